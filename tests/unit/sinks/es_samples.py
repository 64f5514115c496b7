"""Sample records for the Elasticsearch sink, in the wire form the sink runner hands over.

Each builder returns a record that the real Avro schema accepts (checked by ``wire``): epoch-millis
ints, uuid strings, enum symbols as strings, as ``AvroCodec(logical_types=False)`` decodes them.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import fastavro

from schemas import load_schema
from sinks.base import SinkRecord
from twin.codec import without_logical_types
from twin.topics import topic as catalog_topic

T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def wire(topic: str, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` after an Avro round trip through ``topic``'s schema, read without logical types."""
    schema = load_schema(catalog_topic(topic).value_schema)
    plain = fastavro.parse_schema(without_logical_types(json.loads(schema.text)))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, plain, record)
    buf.seek(0)
    out = fastavro.schemaless_reader(buf, plain, plain)
    assert isinstance(out, dict)
    return out


def sink_record(topic: str, value: dict[str, Any], offset: int = 0) -> SinkRecord:
    return SinkRecord(topic, 0, offset, value.get("machine_id", "").encode() or None, value)


def _id(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


def alarm(
    status: str = "ACTIVE_UNACK",
    *,
    at: int = T0,
    machine: str = "press-2",
    alarm_key: str = "a1",
    message: str = "hydraulic pressure low",
    severity: str = "MAJOR",
) -> dict[str, Any]:
    cleared = status.startswith("CLEARED")
    acked = status.endswith("_ACK")
    return wire(
        "twin.alarms",
        {
            "event_id": _id("alarm", alarm_key, status, at),
            "event_time": at,
            "source": "processor:alarms",
            "correlation_id": _id("anomaly", alarm_key),
            "alarm_id": _id("alarm", alarm_key),
            "line_id": "line-1",
            "machine_id": machine,
            "alarm_type": "LowPressure",
            "rule_id": "pressure-low",
            "severity": severity,
            "status": status,
            "start_time": T0,
            "end_time": at if cleared else None,
            "ack_time": at if acked else None,
            "acked_by": "operator-7" if acked else None,
            "clear_time": at if cleared else None,
            "cleared_by": "rule" if cleared else None,
            "value": 41.5,  # what raised it: kept for the alarm's life
            "peak_value": 38.0,  # low-pressure alarm: the worst value is the lowest
            "clear_value": 46.2 if cleared else None,
            "message": message,
            "details": {"signal": "pressure_bar", "threshold": "45"},
        },
    )


def anomaly(*, at: int = T0, machine: str = "press-2", key: str = "n1") -> dict[str, Any]:
    return wire(
        "twin.anomalies",
        {
            "event_id": _id("anomaly", key, at),
            "event_time": at,
            "source": "processor:anomaly",
            "correlation_id": _id("anomaly", key, at),
            "line_id": "line-1",
            "machine_id": machine,
            "score": 3.25,
            "threshold": 2.5,
            "detector": "hst-multivariate",
            "model_version": "hst-1",
            "contributing": [
                {"name": "vibration_rms", "value": 7.1, "unit": "mm/s", "score": 2.0},
                {"name": "temperature", "value": None, "unit": "", "score": 1.25},
            ],
            "observed_event_id": _id("telemetry", key, at),
        },
    )


def state_change(
    *, at: int = T0, machine: str = "weld-1", previous: str | None = "RUNNING", state: str = "DOWN"
) -> dict[str, Any]:
    return wire(
        "factory.state",
        {
            "event_id": _id("state", machine, at),
            "event_time": at,
            "source": "sim:line-1",
            "correlation_id": _id("state", machine, at),
            "line_id": "line-1",
            "machine_id": machine,
            "previous": previous,
            "state": state,
            "reason": "wire feed jam",
        },
    )


def schedule_request(*, at: int = T0) -> dict[str, Any]:
    return wire(
        "schedule.requests",
        {
            "event_id": _id("request", at),
            "event_time": at,
            "source": "processor:scheduler-trigger",
            "correlation_id": _id("state", "weld-1", at),
            "request_id": _id("request-id", at),
            "line_id": "line-1",
            "trigger": "MACHINE_DOWN",
            "trigger_machine_id": "weld-1",
            "jobs": [
                {"job_id": "J1", "priority": 1, "due_time": None, "processing_time_s": {"weld-1": 30.0}},
                {
                    "job_id": "J2",
                    "priority": 0,
                    "due_time": at + 60_000,
                    "processing_time_s": {"weld-2": 25.0},
                },
            ],
            "machines": [
                {"machine_id": "weld-1", "available": False, "available_from": at + 600_000},
                {"machine_id": "weld-2", "available": True, "available_from": None},
            ],
            "horizon_s": 3600.0,
        },
    )


def schedule_plan(*, at: int = T0) -> dict[str, Any]:
    return wire(
        "schedule.plans",
        {
            "event_id": _id("plan", at),
            "event_time": at,
            "source": "scheduler:qaoa",
            "correlation_id": _id("state", "weld-1", at),
            "plan_id": _id("plan-id", at),
            "request_id": _id("request-id", at),
            "line_id": "line-1",
            "solver": "qaoa",
            "status": "FEASIBLE",
            "objective": 55.0,
            "solve_time_ms": 420,
            "assignments": [
                {"job_id": "J1", "machine_id": "weld-2", "start_time": at, "end_time": at + 30_000},
                {"job_id": "J2", "machine_id": "weld-2", "start_time": at + 30_000, "end_time": at + 55_000},
            ],
        },
    )


def every_kind(at: int = T0) -> list[SinkRecord]:
    """One record of every topic the sink indexes."""
    return [
        sink_record("twin.alarms", alarm(at=at), 0),
        sink_record("twin.anomalies", anomaly(at=at), 1),
        sink_record("factory.state", state_change(at=at), 2),
        sink_record("schedule.requests", schedule_request(at=at), 3),
        sink_record("schedule.plans", schedule_plan(at=at), 4),
    ]
