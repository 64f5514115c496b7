"""Sample events for the Cassandra sink, in the exact form the sink runner hands over.

Each sample goes through the real Avro schema (encode, then decode without logical types, as
``AvroCodec(logical_types=False)`` does), so defaults are filled in and a sample that breaks its
contract fails here, not in the sink.
"""

from __future__ import annotations

import io
import json
import uuid
from functools import cache
from typing import Any

import fastavro

from schemas import load_schema
from sinks.base import SinkRecord
from twin.codec import without_logical_types
from twin.topics import topic as catalog_topic

T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z
LINE = "line-1"
ALARM_ID = "5b0e3f4e-8d0a-4c53-9a55-0f6f3a1d2b01"


@cache
def _parsed(schema_key: str) -> Any:
    return fastavro.parse_schema(without_logical_types(json.loads(load_schema(schema_key).text)))


def wire(topic: str, value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as the sink receives it from ``topic``: validated, defaults filled, plain types."""
    parsed = _parsed(catalog_topic(topic).value_schema)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, value)
    buf.seek(0)
    out = fastavro.schemaless_reader(buf, parsed, None)
    assert isinstance(out, dict)
    return out


def record(topic: str, value: dict[str, Any], offset: int = 0, validate: bool = True) -> SinkRecord:
    return SinkRecord(topic, 0, offset, None, wire(topic, value) if validate else value)


def _base(t: int, event_id: str | None = None) -> dict[str, Any]:
    eid = event_id or str(uuid.uuid4())
    return {"event_id": eid, "event_time": t, "source": "test", "correlation_id": eid}


def telemetry(machine: str = "cnc-1", t: int = T0, **values: float | None) -> dict[str, Any]:
    channels = values or {"vibration_rms": 1.5, "spindle_temp": 41.0}
    units = {"vibration_rms": "mm/s", "spindle_temp": "degC"}
    return wire(
        "factory.telemetry",
        {
            **_base(t),
            "line_id": LINE,
            "machine_id": machine,
            "machine_type": "cnc",
            "channels": [{"name": n, "value": v, "unit": units.get(n, "")} for n, v in channels.items()],
        },
    )


def part(machine: str = "cnc-1", t: int = T0, good: bool = True) -> dict[str, Any]:
    return wire(
        "factory.production",
        {
            **_base(t),
            "line_id": LINE,
            "machine_id": machine,
            "part_id": f"P-{t}",
            "cycle_time_s": 31.5,
            "ideal_cycle_time_s": 30.0,
            "good": good,
            "scrap_reason": None if good else "burr",
        },
    )


def state(
    machine: str = "cnc-1", t: int = T0, new: str = "DOWN", previous: str | None = "RUNNING"
) -> dict[str, Any]:
    return wire(
        "factory.state",
        {
            **_base(t),
            "line_id": LINE,
            "machine_id": machine,
            "previous": previous,
            "state": new,
            "reason": "jam",
        },
    )


def anomaly(machine: str = "cnc-1", t: int = T0) -> dict[str, Any]:
    return wire(
        "twin.anomalies",
        {
            **_base(t),
            "line_id": LINE,
            "machine_id": machine,
            "score": 0.93,
            "threshold": 0.8,
            "detector": "robust-z",
            "model_version": "v1",
            "contributing": [{"name": "vibration_rms", "value": 7.5, "unit": "mm/s", "score": 0.9}],
            "observed_event_id": str(uuid.uuid4()),
        },
    )


def rul_estimate(machine: str = "cnc-1", t: int = T0) -> dict[str, Any]:
    return wire(
        "twin.maintenance",
        {
            **_base(t),
            "line_id": LINE,
            "machine_id": machine,
            "component": "machine",
            "rul_s": 5400.0,
            "rul_low_s": 3000.0,
            "rul_high_s": 9000.0,
            "band": 0.8,
            "capped": False,
            "model_version": "rul-mlp.1.abc#12",
            "contributing": [{"name": "vibration_rms", "value": 7.5, "unit": "mm/s", "score": 0.7}],
            "observed_event_id": str(uuid.uuid4()),
        },
    )


def alarm(status: str, t: int, machine: str = "cnc-1", alarm_id: str = ALARM_ID) -> dict[str, Any]:
    """One lifecycle event of one alarm (started at T0) in ``status``, emitted at ``t``."""
    acked = status in ("ACTIVE_ACK", "CLEARED_ACK")
    cleared = status.startswith("CLEARED")
    return wire(
        "twin.alarms",
        {
            **_base(t, str(uuid.uuid5(uuid.UUID(alarm_id), f"{status}@{t}"))),
            "alarm_id": alarm_id,
            "line_id": LINE,
            "machine_id": machine,
            "alarm_type": "HighVibration",
            "rule_id": "vibration-high",
            "severity": "MAJOR",
            "status": status,
            "start_time": T0,
            "end_time": t if cleared else None,
            "ack_time": t if acked else None,
            "acked_by": "op-7" if acked else None,
            "clear_time": t if cleared else None,
            "cleared_by": "rule" if cleared else None,
            "value": 7.5,  # what raised it: kept for the alarm's life
            "peak_value": 9.1,
            "clear_value": 2.28 if cleared else None,
            "message": "vibration above 7 mm/s",
        },
    )


def kpi(
    scope: str = "LINE", scope_id: str = LINE, start: int = T0, window_s: int = 60, oee: float = 0.75
) -> dict[str, Any]:
    return wire(
        "twin.kpis",
        {
            **_base(start + window_s * 1000),
            "line_id": LINE,
            "scope": scope,
            "scope_id": scope_id,
            "window_start": start,
            "window_end": start + window_s * 1000,
            "window_size_s": window_s,
            "planned_time_s": float(window_s),
            "run_time_s": float(window_s),
            "total_count": 2,
            "good_count": 2,
            "ideal_cycle_time_s": 30.0,
            "availability": 1.0,
            "performance": oee,
            "quality": 1.0,
            "oee": oee,
            "throughput_per_hour": 120.0,
            "mean_cycle_time_s": 30.0,
            "scrap_rate": 0.0,
        },
    )


def schedule_request(t: int = T0) -> dict[str, Any]:
    return wire(
        "schedule.requests",
        {
            **_base(t),
            "request_id": "9d2f0c53-6f27-4f55-8d8f-3c2b2f0b7a10",
            "line_id": LINE,
            "trigger": "MACHINE_DOWN",
            "trigger_machine_id": "cnc-1",
            "jobs": [
                {
                    "job_id": "J1",
                    "priority": 1,
                    "due_time": t + 3_600_000,
                    "processing_time_s": {"cnc-2": 30.0},
                }
            ],
            "machines": [
                {"machine_id": "cnc-1", "available": False, "available_from": t + 600_000},
                {"machine_id": "cnc-2", "available": True},
            ],
        },
    )


def schedule_plan(t: int = T0) -> dict[str, Any]:
    return wire(
        "schedule.plans",
        {
            **_base(t),
            "plan_id": "0c4e9a43-3f8e-4f3e-9b55-7d1f0a9e2c22",
            "request_id": "9d2f0c53-6f27-4f55-8d8f-3c2b2f0b7a10",
            "line_id": LINE,
            "solver": "cp-sat",
            "status": "OPTIMAL",
            "objective": 930.0,
            "solve_time_ms": 12,
            "assignments": [{"job_id": "J1", "machine_id": "cnc-2", "start_time": t, "end_time": t + 30_000}],
        },
    )
