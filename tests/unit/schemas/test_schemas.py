"""Every contract is documented, carries the common header, and round-trips through Avro."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import load_schema, schema_names
from tests.avro_strategies import normalise, records
from twin.errors import ConfigError
from twin.topics import CATALOG, dlq_topic, topic

HEADER = {
    "event_id": {"type": "string", "logicalType": "uuid"},
    "event_time": {"type": "long", "logicalType": "timestamp-millis"},
    "source": "string",
    "correlation_id": "string",
}
EXPECTED = {
    "telemetry", "part_produced", "machine_state", "anomaly", "alarm", "alarm_command",
    "kpi_window", "twin_state", "schedule_request", "schedule_plan", "rl_step", "maintenance",
}  # fmt: skip


def test_one_schema_per_event_type() -> None:
    assert set(schema_names()) == EXPECTED


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_header_and_docs(key: str) -> None:
    definition = load_schema(key).definition
    fields = {f["name"]: f for f in definition["fields"]}
    for name, avro_type in HEADER.items():
        assert fields[name]["type"] == avro_type, name
    assert definition.get("doc")
    assert [f["name"] for f in definition["fields"] if not f.get("doc")] == []


def test_machine_states_are_the_six_of_the_contract() -> None:
    state = next(f for f in load_schema("machine_state").definition["fields"] if f["name"] == "previous")
    assert state["type"][1]["symbols"] == ["RUNNING", "IDLE", "STARVED", "BLOCKED", "DOWN", "SETUP"]


def roundtrip(parsed: Any, record: Any) -> Any:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    buf.seek(0)
    return fastavro.schemaless_reader(buf, parsed, None)


@pytest.mark.parametrize("key", sorted(EXPECTED))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_schema_round_trips(key: str, data: st.DataObject) -> None:
    parsed = load_schema(key).parsed
    record = data.draw(records(parsed))
    assert normalise(roundtrip(parsed, record)) == record


def test_telemetry_carries_any_plants_channels() -> None:
    # A pump recording: signals the simulator never emits, units included, one sample missing.
    pump = {
        "event_id": "0b7f3c2e-4a43-4bd1-9d0c-2a1f5f0b6a11",
        "event_time": 1_700_000_000_000,
        "source": "file:pump.csv",
        "correlation_id": "0b7f3c2e-4a43-4bd1-9d0c-2a1f5f0b6a11",
        "line_id": "water-1",
        "machine_id": "pump-7",
        "machine_type": "pump",
        "channels": [
            {"name": "accel_x", "value": 0.31, "unit": "g"},
            {"name": "motor_current", "value": 12.4, "unit": "A"},
            {"name": "pressure_in", "value": None, "unit": "bar"},
            {"name": "flow_rate", "value": 31.0, "unit": "m3/h"},
        ],
    }
    assert normalise(roundtrip(load_schema("telemetry").parsed, pump)) == pump


def test_catalog_is_consistent() -> None:
    names = [t.name for t in CATALOG]
    assert len(names) == len(set(names)) == 12
    for t in CATALOG:
        fields = load_schema(t.value_schema).field_names
        assert t.key in fields, f"{t.name}: key {t.key} is not a field of {t.value_schema}"
        assert t.dlq == f"{t.name}.dlq"
        assert dlq_topic(t).name == t.dlq
    assert topic("twin.state").compacted
    assert topic("twin.state").config()["cleanup.policy"] == "compact"
    assert topic("factory.telemetry").config()["cleanup.policy"] == "delete"
    with pytest.raises(ConfigError, match="unknown topic 'nope'"):
        topic("nope")
    with pytest.raises(ConfigError, match="no schema 'nope'"):
        load_schema("nope")
