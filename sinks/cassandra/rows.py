"""From a decoded event (plain wire form) to the writes that store it: pure, no connection.

Each mapper returns ``(statement, parameters)`` pairs; the statements are the prepared CQL in
:data:`STATEMENTS`. Every write carries ``USING TIMESTAMP`` = event time in microseconds, so the
newest event wins a cell whatever order events arrive in, and writing an event again changes nothing.

Two rules about nulls, because a null bound in CQL is a tombstone:

- history rows keyed by the event id are written once: a null is *not written* (``UNSET_VALUE``),
  which keeps tombstones out of the big tables;
- latest-state rows (alarms, KPI windows) are overwritten by later events: a null must overwrite an
  older value, so it is written as a null.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from cassandra.query import UNSET_VALUE

from twin.errors import MappingError
from twin.topics import (
    ALARMS,
    ANOMALIES,
    KPIS,
    MAINTENANCE,
    PRODUCTION,
    SCHEDULE_PLANS,
    SCHEDULE_REQUESTS,
    STATE,
    TELEMETRY,
)

Params = tuple[Any, ...]
Write = tuple[str, Params]

DAY_MS = 86_400_000
# The driver takes a CQL `date` as days since the epoch offset by 2**31 (the wire form).
_DATE_OFFSET = 2**31
# Event times the tables can hold and the query side can turn back into datetimes (year 1970..9999).
MAX_EVENT_TIME_MS = 253_402_300_799_999
# An alarm's write timestamps are its start (µs) + its version: a thousand changes stay within the
# start's millisecond, so the rows of a later alarm never lose to an earlier one's.
MAX_ALARM_VERSION = 1000

ALARM_STATUSES = ("ACTIVE_UNACK", "ACTIVE_ACK", "CLEARED_UNACK", "CLEARED_ACK")
ACTIVE_STATUSES = ("ACTIVE_UNACK", "ACTIVE_ACK")
# Lifecycle order; added to the write timestamp so two events of one alarm in the same millisecond
# still resolve to the later lifecycle step (and never delete each other).
_STATUS_RANK = {s: i for i, s in enumerate(ALARM_STATUSES)}
_OTHER_STATUSES = {s: [o for o in ALARM_STATUSES if o != s] for s in ALARM_STATUSES}

_ALARM_COLUMNS = (
    "line_id, alarm_type, rule_id, severity, end_time, ack_time, acked_by, clear_time, cleared_by, "
    "value, peak_value, clear_value, message, details, event_id, event_time, source, correlation_id, version"
)

# name -> CQL (``{ks}`` is the keyspace). Bind markers in column order, USING TIMESTAMP last. The four
# machine-event tables list their columns in one layout (see ``_machine_event``).
STATEMENTS: dict[str, str] = {
    "telemetry": (
        "INSERT INTO {ks}.telemetry (machine_id, day, event_time, event_id, line_id, machine_type, "
        "channel_values, channel_units, source, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "USING TIMESTAMP ?"
    ),
    "machine_by_line": (
        "INSERT INTO {ks}.machines_by_line (line_id, machine_id, machine_type) VALUES (?, ?, ?) "
        "USING TIMESTAMP ?"
    ),
    "part": (
        "INSERT INTO {ks}.parts (machine_id, day, event_time, event_id, line_id, part_id, cycle_time_s, "
        "ideal_cycle_time_s, good, scrap_reason, product_family, source, correlation_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    ),
    "machine_state": (
        "INSERT INTO {ks}.machine_states (machine_id, day, event_time, event_id, line_id, previous, state, "
        "reason, source, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    ),
    "anomaly": (
        "INSERT INTO {ks}.anomalies (machine_id, day, event_time, event_id, line_id, score, threshold, "
        "detector, model_version, contributing, observed_event_id, source, correlation_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    ),
    "rul_estimate": (
        "INSERT INTO {ks}.rul_estimates (machine_id, day, event_time, event_id, line_id, component, rul_s, "
        "rul_low_s, rul_high_s, band, capped, model_version, contributing, observed_event_id, source, "
        "correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    ),
    "kpi_window": (
        "INSERT INTO {ks}.kpi_windows (scope, scope_id, window_s, day, window_start, window_end, line_id, "
        "event_id, event_time, source, correlation_id, planned_time_s, run_time_s, total_count, good_count, "
        "ideal_cycle_time_s, availability, performance, quality, oee, throughput_per_hour, "
        "mean_cycle_time_s, scrap_rate, failures, mtbf_s, mttr_s, late_events) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "USING TIMESTAMP ?"
    ),
    "alarm_by_machine": (
        "INSERT INTO {ks}.alarms_by_machine (machine_id, start_time, alarm_id, status, "
        + _ALARM_COLUMNS
        + ") "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    ),
    "alarm_by_state": (
        "INSERT INTO {ks}.alarms_by_state (status, start_time, alarm_id, machine_id, " + _ALARM_COLUMNS + ") "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    ),
    # Takes the alarm out of every other status partition, as of this event: an older event's row
    # there is shadowed, a newer one's survives, so arrival order does not matter.
    "alarm_state_delete": (
        "DELETE FROM {ks}.alarms_by_state USING TIMESTAMP ? WHERE status IN ? AND start_time = ? "
        "AND alarm_id = ?"
    ),
    "alarm_event": (
        "INSERT INTO {ks}.alarm_events (alarm_id, event_time, event_id, machine_id, line_id, alarm_type, "
        "severity, status, value, peak_value, clear_value, message, acked_by, cleared_by, source, "
        "correlation_id, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "USING TIMESTAMP ?"
    ),
    "schedule_plan": (
        "INSERT INTO {ks}.schedule_plans (line_id, event_time, plan_id, request_id, solver, status, "
        "objective, solve_time_ms, assignments, objective_name, bound, chosen_by, comparison, source, "
        "correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    ),
    "schedule_request": (
        "INSERT INTO {ks}.schedule_requests (line_id, event_time, request_id, trigger, trigger_machine_id, "
        "jobs, machines, horizon_s, source, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "USING TIMESTAMP ?"
    ),
}


def event_ms(value: Any, field: str = "event_time") -> int:
    """A timestamp-millis checked against what the tables (and a datetime) can hold."""
    if type(value) is not int or not 0 <= value <= MAX_EVENT_TIME_MS:
        msg = f"{field} {value!r} is not a time between 1970 and 9999 in epoch milliseconds"
        raise MappingError(msg)
    return value


def day_of(ms: int) -> int:
    """The CQL ``date`` (driver wire form) of an epoch-millis time: the partition's day bucket."""
    return _DATE_OFFSET + ms // DAY_MS


def as_uuid(value: Any, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        msg = f"{field} {value!r} is not a uuid"
        raise MappingError(msg) from None


def _unset(value: Any) -> Any:
    return UNSET_VALUE if value is None else value


def _opt_ms(value: Any, field: str) -> int | None:
    return None if value is None else event_ms(value, field)


def _machine_event(v: Mapping[str, Any], ms: int, *columns: Any) -> Params:
    """The row of a machine-event history table: its key (machine, day, event time, event id), the
    line, the table's own ``columns``, then source, correlation id and the write timestamp."""
    return (
        v["machine_id"],
        _DATE_OFFSET + ms // DAY_MS,
        ms,
        as_uuid(v["event_id"], "event_id"),
        v["line_id"],
        *columns,
        v["source"],
        v["correlation_id"],
        ms * 1000,
    )


def telemetry(v: Mapping[str, Any]) -> list[Write]:
    ms = event_ms(v["event_time"])
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    for ch in v["channels"]:
        name = ch["name"]
        units[name] = ch["unit"]
        if ch["value"] is not None:
            values[name] = ch["value"]
    return [("telemetry", _machine_event(v, ms, v["machine_type"], values, units))]


def part(v: Mapping[str, Any]) -> list[Write]:
    ms = event_ms(v["event_time"])
    columns = (
        v["part_id"],
        v["cycle_time_s"],
        v["ideal_cycle_time_s"],
        v["good"],
        _unset(v["scrap_reason"]),
        _unset(v.get("product_family")),
    )
    return [("part", _machine_event(v, ms, *columns))]


def machine_state(v: Mapping[str, Any]) -> list[Write]:
    ms = event_ms(v["event_time"])
    return [("machine_state", _machine_event(v, ms, _unset(v["previous"]), v["state"], v["reason"]))]


def anomaly(v: Mapping[str, Any]) -> list[Write]:
    ms = event_ms(v["event_time"])
    contributing = [(c["name"], c["value"], c["unit"], c["score"]) for c in v["contributing"]]
    columns = (
        v["score"],
        v["threshold"],
        v["detector"],
        v["model_version"],
        contributing,
        as_uuid(v["observed_event_id"], "observed_event_id"),
    )
    return [("anomaly", _machine_event(v, ms, *columns))]


def rul_estimate(v: Mapping[str, Any]) -> list[Write]:
    ms = event_ms(v["event_time"])
    contributing = [(c["name"], c["value"], c["unit"], c["score"]) for c in v["contributing"]]
    columns = (
        v["component"],
        v["rul_s"],
        v["rul_low_s"],
        v["rul_high_s"],
        v["band"],
        v["capped"],
        v["model_version"],
        contributing,
        as_uuid(v["observed_event_id"], "observed_event_id"),
    )
    return [("rul_estimate", _machine_event(v, ms, *columns))]


def kpi_window(v: Mapping[str, Any]) -> list[Write]:
    ms = event_ms(v["event_time"])
    start = event_ms(v["window_start"], "window_start")
    row = (
        v["scope"],
        v["scope_id"],
        v["window_size_s"],
        day_of(start),
        start,
        event_ms(v["window_end"], "window_end"),
        v["line_id"],
        as_uuid(v["event_id"], "event_id"),
        ms,
        v["source"],
        v["correlation_id"],
        v["planned_time_s"],
        v["run_time_s"],
        v["total_count"],
        v["good_count"],
        v["ideal_cycle_time_s"],
        v["availability"],
        v["performance"],
        v["quality"],
        v["oee"],
        v["throughput_per_hour"],
        v["mean_cycle_time_s"],
        v["scrap_rate"],
        v["failures"],
        v["mtbf_s"],
        v["mttr_s"],
        v["late_events"],
        ms * 1000,
    )
    return [("kpi_window", row)]


def alarm(v: Mapping[str, Any]) -> list[Write]:
    ms = event_ms(v["event_time"])
    status = v["status"]
    if status not in _STATUS_RANK:
        msg = f"unknown alarm status {status!r}"
        raise MappingError(msg)
    alarm_id = as_uuid(v["alarm_id"], "alarm_id")
    event_id = as_uuid(v["event_id"], "event_id")
    start = event_ms(v["start_time"], "start_time")
    version = v.get("version") or 0
    if type(version) is not int or not 0 <= version < MAX_ALARM_VERSION:
        msg = f"alarm version {version!r} is not between 0 and {MAX_ALARM_VERSION - 1}"
        raise MappingError(msg)
    # The write timestamp orders an alarm's rows: by lifecycle version where the record has one
    # (the start time is the same for all of them, the version breaks the tie: an ACK stamped
    # before a raise from a clock running ahead still wins), else by event time and status rank.
    ts = start * 1000 + version if version else ms * 1000 + _STATUS_RANK[status]
    machine = v["machine_id"]
    common = (
        v["line_id"],
        v["alarm_type"],
        v["rule_id"],
        v["severity"],
        _opt_ms(v["end_time"], "end_time"),
        _opt_ms(v["ack_time"], "ack_time"),
        v["acked_by"],
        _opt_ms(v["clear_time"], "clear_time"),
        v["cleared_by"],
        v["value"],
        v["peak_value"],
        v["clear_value"],
        v["message"],
        v["details"],
        event_id,
        ms,
        v["source"],
        v["correlation_id"],
        version or None,
        ts,
    )
    event = (
        alarm_id,
        ms,
        event_id,
        machine,
        v["line_id"],
        v["alarm_type"],
        v["severity"],
        status,
        _unset(v["value"]),
        _unset(v["peak_value"]),
        _unset(v["clear_value"]),
        v["message"],
        _unset(v["acked_by"]),
        _unset(v["cleared_by"]),
        v["source"],
        v["correlation_id"],
        _unset(version or None),
        ts,
    )
    return [
        ("alarm_by_machine", (machine, start, alarm_id, status, *common)),
        ("alarm_by_state", (status, start, alarm_id, machine, *common)),
        ("alarm_state_delete", (ts, _OTHER_STATUSES[status], start, alarm_id)),
        ("alarm_event", event),
    ]


def schedule_plan(v: Mapping[str, Any]) -> list[Write]:
    ms = event_ms(v["event_time"])
    assignments = [
        (
            a["job_id"],
            a["machine_id"],
            event_ms(a["start_time"], "assignment start_time"),
            event_ms(a["end_time"], "assignment end_time"),
        )
        for a in v["assignments"]
    ]
    row = (
        v["line_id"],
        ms,
        as_uuid(v["plan_id"], "plan_id"),
        as_uuid(v["request_id"], "request_id"),
        v["solver"],
        v["status"],
        _unset(v["objective"]),
        v["solve_time_ms"],
        assignments,
        v.get("objective_name", "makespan"),
        _unset(v.get("bound")),
        v.get("chosen_by", ""),
        [
            (c["solver"], c["status"], c.get("objective"), c.get("gap"), c.get("solve_time_ms"))
            for c in v.get("comparison") or ()
        ],
        v["source"],
        v["correlation_id"],
        ms * 1000,
    )
    return [("schedule_plan", row)]


def schedule_request(v: Mapping[str, Any]) -> list[Write]:
    ms = event_ms(v["event_time"])
    jobs = [
        (j["job_id"], j["priority"], _opt_ms(j["due_time"], "due_time"), j["processing_time_s"])
        for j in v["jobs"]
    ]
    machines = [
        (m["machine_id"], m["available"], _opt_ms(m["available_from"], "available_from"))
        for m in v["machines"]
    ]
    row = (
        v["line_id"],
        ms,
        as_uuid(v["request_id"], "request_id"),
        v["trigger"],
        _unset(v["trigger_machine_id"]),
        jobs,
        machines,
        v["horizon_s"],
        v["source"],
        v["correlation_id"],
        ms * 1000,
    )
    return [("schedule_request", row)]


# Catalog topic -> mapper. The sink stores exactly these topics.
MAPPERS: dict[str, Callable[[Mapping[str, Any]], list[Write]]] = {
    TELEMETRY: telemetry,
    PRODUCTION: part,
    STATE: machine_state,
    ANOMALIES: anomaly,
    MAINTENANCE: rul_estimate,
    ALARMS: alarm,
    KPIS: kpi_window,
    SCHEDULE_REQUESTS: schedule_request,
    SCHEDULE_PLANS: schedule_plan,
}

# Topics whose events name a machine of a line: they keep machines_by_line current.
MACHINE_TOPICS = frozenset({TELEMETRY, PRODUCTION, STATE})


def machine_of_line(v: Mapping[str, Any]) -> tuple[str, str, str, int]:
    """``(line_id, machine_id, machine_type, event_ms)`` of a machine event (machines_by_line)."""
    return v["line_id"], v["machine_id"], v.get("machine_type", ""), event_ms(v["event_time"])
