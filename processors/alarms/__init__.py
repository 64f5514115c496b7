"""Alarms with a lifecycle: YAML rules over telemetry, machine state and anomalies (see docs/alarms.md)."""

from __future__ import annotations

from processors.alarms.engine import AlarmEngine, AlarmRules
from processors.alarms.rules import DEFAULT_RULES, Rule, RulesFile, parse_rules
from processors.base import SnapshotError, load_snapshot

__all__ = [
    "DEFAULT_RULES",
    "AlarmEngine",
    "AlarmRules",
    "Rule",
    "RulesFile",
    "SnapshotError",
    "load_snapshot",
    "parse_rules",
]
