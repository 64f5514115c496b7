"""AvroCodec(logical_types=False): decode returns the wire form, for our own and foreign writers."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, cast

from confluent_kafka.schema_registry import Schema

from schemas import load_schema
from twin.codec import AvroCodec, without_logical_types


class StubRegistry:
    """Just enough of SchemaRegistryClient for AvroCodec: ids in registration order."""

    def __init__(self) -> None:
        self.schemas: list[Schema] = []

    def register_schema(self, subject: str, schema: Schema) -> int:
        self.schemas.append(schema)
        return len(self.schemas)

    def get_schema(self, schema_id: int) -> Schema:
        return self.schemas[schema_id - 1]


EVENT_ID = "5f0c6b1e-0000-4000-8000-000000000001"
EVENT_TIME = 1_764_000_000_123


def telemetry() -> dict[str, Any]:
    return {
        "event_id": EVENT_ID,
        "event_time": EVENT_TIME,
        "source": "test",
        "correlation_id": EVENT_ID,
        "line_id": "line-1",
        "machine_id": "cnc-1",
        "machine_type": "cnc",
        "channels": [{"name": "a", "value": 1.5, "unit": "mm/s"}],
    }


def test_own_schema_decodes_to_ints_and_strings() -> None:
    registry = cast(Any, StubRegistry())
    text = load_schema("telemetry").text
    typed = AvroCodec(registry, "t-value", text)
    plain = AvroCodec(registry, "t-value", text, logical_types=False)
    wire = typed.encode(telemetry())

    converted = typed.decode(wire)
    assert converted["event_time"] == dt.datetime.fromtimestamp(EVENT_TIME / 1000, tz=dt.UTC)
    assert converted["event_id"] == uuid.UUID(EVENT_ID)

    raw = plain.decode(wire)
    assert raw == telemetry()
    assert type(raw["event_time"]) is int and type(raw["event_id"]) is str


def test_foreign_writer_schema_decodes_to_ints_and_strings() -> None:
    registry = StubRegistry()
    older = json.loads(load_schema("telemetry").text)
    older["fields"] = [f for f in older["fields"] if f["name"] != "machine_type"]
    writer = AvroCodec(cast(Any, registry), "t-value", json.dumps(older))
    reader = AvroCodec(cast(Any, registry), "t-value", load_schema("telemetry").text, logical_types=False)
    assert writer.schema_id != reader.schema_id
    record = telemetry()
    del record["machine_type"]

    decoded = reader.decode(writer.encode(record))
    assert decoded["event_time"] == EVENT_TIME and decoded["event_id"] == EVENT_ID
    assert decoded["machine_type"] == ""  # still resolved against the reader's schema


def test_stripping_touches_types_only() -> None:
    schema: dict[str, Any] = {
        "type": "record",
        "name": "test.R",
        "fields": [
            {"name": "at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
            {"name": "ids", "type": {"type": "array", "items": {"type": "string", "logicalType": "uuid"}}},
            {"name": "meta", "type": {"type": "map", "values": "string"}, "default": {"logicalType": "kept"}},
        ],
    }
    plain = without_logical_types(schema)
    assert plain["fields"][0]["type"] == ["null", {"type": "long"}]
    assert plain["fields"][1]["type"] == {"type": "array", "items": {"type": "string"}}
    assert plain["fields"][2]["default"] == {"logicalType": "kept"}  # data, not a type
    assert schema["fields"][0]["type"][1]["logicalType"] == "timestamp-millis"  # input untouched
