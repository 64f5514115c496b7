"""From a decoded record (plain wire form: epoch-millis ints, uuid strings) to the documents to index.

Each builder picks the mapped fields explicitly, so a new Avro field never reaches a ``strict``
mapping by accident, and writes a human ``message`` where the event has none, so a plain-words
search finds state changes, anomalies and plans as well as alarms.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sinks.elasticsearch.mappings import DAY_FORMAT
from twin.errors import DocumentError
from twin.topics import ALARMS, ANOMALIES, SCHEDULE_PLANS, SCHEDULE_REQUESTS, STATE

DAY_MS = 86_400_000
Doc = dict[str, Any]

ALARM_FIELDS = (
    "event_id",
    "event_time",
    "source",
    "correlation_id",
    "alarm_id",
    "line_id",
    "machine_id",
    "alarm_type",
    "rule_id",
    "severity",
    "status",
    "start_time",
    "end_time",
    "ack_time",
    "acked_by",
    "clear_time",
    "cleared_by",
    "value",
    "peak_value",
    "clear_value",
    "message",
    "details",
    "version",
)
# Alarm lifecycle order. A record with a lifecycle version is ordered by it: start_time * 4096 +
# version (start_time is the same for all of an alarm's records; above any event_time * 4 of a
# record written before versions existed). Without: every valid path (raise -> ack -> clear -> ack)
# only moves up this rank, so event_time * 4 + rank orders two events even within one millisecond.
VERSION_SPAN = 4096
STATUS_RANK = {"ACTIVE_UNACK": 0, "ACTIVE_ACK": 1, "CLEARED_UNACK": 2, "CLEARED_ACK": 3}


@lru_cache(maxsize=4096)
def day_suffix(day_number: int) -> str:
    """``YYYY.MM.DD`` of the UTC day ``day_number`` days after the epoch (cached: one per day)."""
    return datetime.fromtimestamp(day_number * 86_400, UTC).strftime(DAY_FORMAT)


def event_day(value: dict[str, Any]) -> str:
    """The UTC day (``YYYY.MM.DD``) of ``value['event_time']``, which picks the daily index."""
    ms = value.get("event_time")
    if type(ms) is not int:
        msg = f"event_time is {type(ms).__name__}, not epoch milliseconds"
        raise DocumentError(msg)
    try:
        return day_suffix(ms // DAY_MS)
    except (OverflowError, OSError, ValueError) as exc:
        msg = f"event_time {ms} is outside the calendar: {exc}"
        raise DocumentError(msg) from exc


def event_id(value: dict[str, Any]) -> str:
    eid = value.get("event_id")
    if not isinstance(eid, str) or not eid:
        msg = "record has no event_id"
        raise DocumentError(msg)
    return eid


def alarm_doc(v: dict[str, Any]) -> Doc:
    return {f: v.get(f) for f in ALARM_FIELDS}


def alarm_version(v: dict[str, Any]) -> int:
    """External version of the current-alarm document: later lifecycle events win, whatever clocks
    stamped them (an ACK can carry an operator's clock behind a machine's).

    >>> raised = {"start_time": 10, "event_time": 7_200_010, "status": "ACTIVE_UNACK", "version": 1}
    >>> acked = {**raised, "event_time": 60_000, "status": "ACTIVE_ACK", "version": 2}
    >>> alarm_version(acked) > alarm_version(raised)
    True
    """
    version = v.get("version") or 0
    if version:
        if not 0 < int(version) < VERSION_SPAN:
            msg = f"alarm version {version} is not between 1 and {VERSION_SPAN - 1}"
            raise DocumentError(msg)
        return int(v["start_time"]) * VERSION_SPAN + int(version)
    return int(v["event_time"]) * 4 + STATUS_RANK.get(str(v.get("status")), 0)


def anomaly_doc(v: dict[str, Any]) -> Doc:
    contributing = [
        {"name": c.get("name"), "value": c.get("value"), "unit": c.get("unit"), "score": c.get("score")}
        for c in v.get("contributing") or ()
    ]
    names = [c["name"] for c in contributing]
    score, threshold = v.get("score"), v.get("threshold")
    return {
        **_envelope(v),
        "machine_id": v.get("machine_id"),
        "score": score,
        "threshold": threshold,
        "detector": v.get("detector"),
        "model_version": v.get("model_version"),
        "observed_event_id": v.get("observed_event_id"),
        "signals": names,
        "contributing": contributing,
        "message": f"{v.get('detector')} anomaly on {v.get('machine_id')}: score {_num(score)} "
        f"over {_num(threshold)}" + (f" ({', '.join(map(str, names))})" if names else ""),
    }


def state_doc(v: dict[str, Any]) -> Doc:
    previous, state, reason = v.get("previous"), v.get("state"), v.get("reason") or ""
    change = f"{previous} -> {state}" if previous else f"{state}"
    return {
        **_envelope(v),
        "machine_id": v.get("machine_id"),
        "event_type": "state_change",
        "state": state,
        "previous": previous,
        "reason": reason,
        "message": f"{v.get('machine_id')} {change}" + (f": {reason}" if reason else ""),
    }


def schedule_request_doc(v: dict[str, Any]) -> Doc:
    jobs = len(v.get("jobs") or ())
    machine = v.get("trigger_machine_id")
    down = [m.get("machine_id") for m in v.get("machines") or () if not m.get("available", True)]
    return {
        **_envelope(v),
        "machine_id": machine,
        "event_type": "schedule_request",
        "request_id": v.get("request_id"),
        "trigger": v.get("trigger"),
        "jobs": jobs,
        "message": f"re-plan {v.get('line_id')} requested: {v.get('trigger')}"
        + (f" on {machine}" if machine else "")
        + f", {jobs} jobs"
        + (f", unavailable: {', '.join(map(str, down))}" if down else ""),
    }


def schedule_plan_doc(v: dict[str, Any]) -> Doc:
    assignments = v.get("assignments") or ()
    machines = sorted({str(a.get("machine_id")) for a in assignments})
    objective = v.get("objective")
    return {
        **_envelope(v),
        "machine_id": machines,
        "event_type": "schedule_plan",
        "request_id": v.get("request_id"),
        "plan_id": v.get("plan_id"),
        "solver": v.get("solver"),
        "status": v.get("status"),
        "objective": objective,
        "solve_time_ms": v.get("solve_time_ms"),
        "assignments": len(assignments),
        "message": f"plan for {v.get('line_id')} by {v.get('solver')}: {v.get('status')}"
        + (f", objective {_num(objective)}" if objective is not None else "")
        + f", {len(assignments)} assignments in {v.get('solve_time_ms')} ms",
    }


def _envelope(v: dict[str, Any]) -> Doc:
    return {
        "event_id": v.get("event_id"),
        "event_time": v.get("event_time"),
        "source": v.get("source"),
        "correlation_id": v.get("correlation_id"),
        "line_id": v.get("line_id"),
    }


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


# catalog topic -> (kind, builder)
BUILDERS: dict[str, tuple[str, Callable[[dict[str, Any]], Doc]]] = {
    ALARMS: ("alarms", alarm_doc),
    ANOMALIES: ("anomalies", anomaly_doc),
    STATE: ("events", state_doc),
    SCHEDULE_REQUESTS: ("events", schedule_request_doc),
    SCHEDULE_PLANS: ("events", schedule_plan_doc),
}
TOPICS: tuple[str, ...] = tuple(BUILDERS)
