"""Frames: one event serialised ONCE as the JSON text every subscribed client receives.

A frame also knows its conflation key: a newer frame with the same key replaces an older one still
waiting in a client's queue (the latest state of a machine wins); ``None`` means every frame counts
(alarm lifecycle changes, plans, replies).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from twin.topics import ALARMS, ANOMALIES, KPIS, SCHEDULE_PLANS, TWIN_STATE

# Catalog topic -> stream name clients filter on, and the frame type they receive.
TOPIC_STREAMS = {
    TWIN_STATE: "state",
    ALARMS: "alarms",
    KPIS: "kpis",
    ANOMALIES: "anomalies",
    SCHEDULE_PLANS: "plans",
}
FRAME_TYPES = {"state": "state", "alarms": "alarm", "kpis": "kpi", "anomalies": "anomaly", "plans": "plan"}


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int  # 0 for control frames (replies), which are never resumed
    stream: str
    line_id: str | None
    machine_id: str | None  # None: a line-level frame
    conflate_key: tuple[Any, ...] | None
    text: str  # what goes on the wire
    data_text: str = ""  # the record alone, reused verbatim in snapshots
    event_time_ms: int = 0


def dumps(value: Any) -> str:
    """Compact JSON; NaN/Infinity (a sensor glitch) become null, as browsers cannot parse them."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def event_frame(seq: int, stream: str, record: dict[str, Any]) -> Frame:
    """The frame of one decoded event (plain wire values: ints for times, strings for uuids/enums)."""
    line_id = _str(record.get("line_id"))
    machine_id = _str(record.get("machine_id"))
    key: tuple[Any, ...] | None
    if stream == "state":
        key = ("state", machine_id)
    elif stream == "anomalies":
        # The live view shows a machine's latest finding; the full history is in the sinks.
        key = ("anomalies", machine_id)
    elif stream == "kpis":
        machine_id = _str(record.get("scope_id")) if record.get("scope") == "MACHINE" else None
        key = ("kpis", record.get("scope"), record.get("scope_id"), record.get("window_size_s"))
    else:  # alarms, plans: every change matters
        key = None
    data_text = dumps(record)
    text = f'{{"type":"{FRAME_TYPES[stream]}","seq":{seq},"data":{data_text}}}'
    return Frame(seq, stream, line_id, machine_id, key, text, data_text, int(record.get("event_time") or 0))


def control_frame(message: dict[str, Any]) -> Frame:
    """A reply to one client (hello, subscribed, errors, command results): never conflated."""
    return Frame(0, "control", None, None, None, dumps(message))


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
