"""Index names, templates and mappings: one daily index per kind, plus the current state of alarms.

Kinds and what they hold:

- ``alarms``: every alarm lifecycle event (``twin.alarms``), the audit trail;
- ``anomalies``: detector findings (``twin.anomalies``);
- ``events``: what happened on the line besides alarms: machine state changes (``factory.state``)
  and re-planning (``schedule.requests``, ``schedule.plans``), under one envelope so a single search
  answers "what happened to press-2 this morning";
- ``current-alarms``: one document per alarm (``_id`` = alarm_id), its latest lifecycle state.

Mappings are ``dynamic: strict``: the documents are built field by field (``documents.py``), so an
unmapped field can only be our bug, and we want it loud (a rejected document) rather than a silently
guessed mapping that breaks a daily index for the rest of the day.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from twin.errors import SinkError

KINDS: tuple[str, ...] = ("alarms", "anomalies", "events")
CURRENT_ALARMS = "current-alarms"
DAY_FORMAT = "%Y.%m.%d"
# Above the built-in templates of a full distribution (priority 100..200 for logs-*, metrics-*).
PRIORITY = 500
# Characters Elasticsearch refuses in index names (plus upper case and a leading -, _ or +).
_BAD_NAME = re.compile(r'[\\/*?"<>| ,#:A-Z]')

_KEYWORD = {"type": "keyword", "ignore_above": 256}
_DATE = {"type": "date", "format": "epoch_millis||strict_date_optional_time"}
_DOUBLE = {"type": "double"}
_LONG = {"type": "long"}
_TEXT = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}}

_ENVELOPE: dict[str, Any] = {
    "event_id": _KEYWORD,
    "event_time": _DATE,
    "source": _KEYWORD,
    "correlation_id": _KEYWORD,
    "line_id": _KEYWORD,
    "machine_id": _KEYWORD,
    "message": _TEXT,
}

ALARM_PROPERTIES: dict[str, Any] = {
    **_ENVELOPE,
    "alarm_id": _KEYWORD,
    "alarm_type": _KEYWORD,
    "rule_id": _KEYWORD,
    "severity": _KEYWORD,
    "status": _KEYWORD,
    "start_time": _DATE,
    "end_time": _DATE,
    "ack_time": _DATE,
    "acked_by": _KEYWORD,
    "clear_time": _DATE,
    "cleared_by": _KEYWORD,
    "value": _DOUBLE,  # the value that raised the alarm
    "peak_value": _DOUBLE,  # the worst value while it was active
    "clear_value": _DOUBLE,  # the value it cleared at
    # Free-form rule key/values: flattened keeps one mapping field however many keys rules invent.
    "details": {"type": "flattened"},
    "version": _LONG,  # lifecycle version: 1 raised, +1 per change
}

ANOMALY_PROPERTIES: dict[str, Any] = {
    **_ENVELOPE,
    "score": _DOUBLE,
    "threshold": _DOUBLE,
    "detector": _KEYWORD,
    "model_version": _KEYWORD,
    "observed_event_id": _KEYWORD,
    "signals": _KEYWORD,  # contributing signal names, for "which anomalies involved vibration"
    "contributing": {"properties": {"name": _KEYWORD, "value": _DOUBLE, "unit": _KEYWORD, "score": _DOUBLE}},
}

EVENT_PROPERTIES: dict[str, Any] = {
    **_ENVELOPE,
    # machine_id may hold several machines (a plan's assignments), so --machine finds plans too.
    "event_type": _KEYWORD,  # state_change | schedule_request | schedule_plan
    "state": _KEYWORD,
    "previous": _KEYWORD,
    "reason": _TEXT,
    "request_id": _KEYWORD,
    "trigger": _KEYWORD,
    "jobs": _LONG,
    "plan_id": _KEYWORD,
    "solver": _KEYWORD,
    "status": _KEYWORD,
    "objective": _DOUBLE,
    "solve_time_ms": _LONG,
    "assignments": _LONG,
}

PROPERTIES: dict[str, dict[str, Any]] = {
    "alarms": ALARM_PROPERTIES,
    "anomalies": ANOMALY_PROPERTIES,
    "events": EVENT_PROPERTIES,
    CURRENT_ALARMS: ALARM_PROPERTIES,
}


def check_prefix(prefix: str) -> str:
    """``prefix`` if Elasticsearch accepts it at the start of an index name; SinkError otherwise."""
    if not prefix or _BAD_NAME.search(prefix) or prefix[0] in "-_+." or len(prefix) > 100:
        msg = (
            f"invalid Elasticsearch index prefix {prefix!r}: use lower case letters, digits, '-', '_' "
            "or '.', not starting with '-', '_', '+' or '.'"
        )
        raise SinkError(msg)
    return prefix


def daily_index(prefix: str, kind: str, day: date) -> str:
    """``<prefix>-<kind>-YYYY.MM.DD``."""
    return f"{prefix}-{kind}-{day.strftime(DAY_FORMAT)}"


def current_alarms_index(prefix: str) -> str:
    # Not <prefix>-alarms-current: an `<prefix>-alarms-*` pattern (a search, a Kibana data view)
    # would then mix current states into the history and count every alarm twice.
    return f"{prefix}-{CURRENT_ALARMS}"


def kind_pattern(prefix: str, kind: str) -> str:
    return f"{prefix}-{kind}-*"


def template_name(prefix: str, kind: str) -> str:
    return f"{prefix}-{kind}"


def daily_index_re(prefix: str) -> re.Pattern[str]:
    """Matches the daily indices of ``prefix``; groups: kind, date."""
    kinds = "|".join(KINDS)
    return re.compile(rf"^{re.escape(prefix)}-({kinds})-(\d{{4}}\.\d{{2}}\.\d{{2}})$")


def index_day(name: str) -> date:
    return datetime.strptime(name[-10:], DAY_FORMAT).replace(tzinfo=UTC).date()


def templates(prefix: str) -> dict[str, dict[str, Any]]:
    """Composable index templates by name: one per kind and one for the current-alarms index."""
    settings = {
        "number_of_shards": 1,
        # One replica wherever there is a second node; a single local node stays green.
        "auto_expand_replicas": "0-1",
    }
    out: dict[str, dict[str, Any]] = {}
    for kind in (*KINDS, CURRENT_ALARMS):
        pattern = current_alarms_index(prefix) if kind == CURRENT_ALARMS else kind_pattern(prefix, kind)
        out[template_name(prefix, kind)] = {
            "index_patterns": [pattern],
            "priority": PRIORITY,
            "template": {
                "settings": settings,
                "mappings": {"dynamic": "strict", "properties": PROPERTIES[kind]},
            },
            "_meta": {"managed_by": "factory-twin", "kind": kind},
        }
    return out
