"""Alarms with a lifecycle: YAML rules over telemetry, machine state and anomalies (see docs/alarms.md)."""

from __future__ import annotations

from processors.alarms.engine import AlarmEngine, AlarmRules
from processors.alarms.rules import DEFAULT_RULES, Rule, RulesFile, parse_rules

__all__ = [
    "DEFAULT_RULES",
    "AlarmEngine",
    "AlarmRules",
    "Rule",
    "RulesFile",
    "parse_rules",
]
