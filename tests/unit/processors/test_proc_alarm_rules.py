"""Alarm rule files: validation errors are one line naming the rule and field; the default rules fit the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from processors.alarms import DEFAULT_RULES, AlarmRules
from processors.alarms.conditions import TelemetryLeaf
from sim.catalog import MACHINE_TYPES
from twin.errors import ConfigError


def rule(**fields: Any) -> dict[str, Any]:
    return {"id": "hv", "alarm_type": "HighVibration", "raise": {"state": "DOWN"}} | fields


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"rules": [rule(raise_={})]}, "rule 'hv', field 'raise_'"),
        ({"rules": [rule(**{"raise": {"channel": "v", "op": ">", "value": "high"}})]}, "field 'raise.value'"),
        ({"rules": [rule(**{"raise": {"channel": "v", "op": "=>", "value": 1}})]}, "field 'raise.op'"),
        ({"rules": [rule(**{"raise": {"chanel": "v", "op": ">", "value": 1}})]}, "needs one of the keys"),
        ({"rules": [rule(**{"raise": {"all": [{"state": "DOWNN"}]}})]}, "field 'raise.all.0.state.0'"),
        (
            {"rules": [rule(**{"raise": {"channel": "v", "op": "between", "low": 1}})]},
            "needs 'low' and 'high'",
        ),
        ({"rules": [rule(severity="HIGH")]}, "rule 'hv', field 'severity'"),
        (
            {"rules": [rule(message="{machine} down")]},
            "field 'message': Value error, bad placeholder 'machine'",
        ),
        ({"rules": [rule(escalate=[{"severity": "CRITICAL"}])]}, "field 'escalate.0'"),
        ({"rules": [rule(clear_after_s=-5)]}, "field 'clear_after_s'"),
        ({"rules": [rule(), rule(alarm_type="Other")]}, "duplicate rule id 'hv'"),
        ({"rules": [{"alarm_type": "X", "raise": {"state": "DOWN"}}]}, "rule #1, field 'id': Field required"),
        ({"rules": [rule(**{"raise": {"anomaly": {"hold_s": 0}}})]}, "field 'raise.anomaly.hold_s'"),
        ({"version": 2, "rules": []}, "field 'version'"),
    ],
)
def test_a_bad_rule_is_one_line_naming_the_rule_and_field(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AlarmRules.from_dict(data)
    message = str(caught.value)
    assert "\n" not in message
    assert expected in message


def test_a_bad_file_names_the_file_rule_and_field(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - id: hot\n    alarm_type: OverTemperature\n"
        "    raise: {channel: temperature, op: '>', value: 70, for_s: -1}\n"
    )
    with pytest.raises(ConfigError, match=r"rules\.yaml: rule 'hot', field 'raise\.for_s'"):
        AlarmRules.from_yaml(path)


def test_yaml_syntax_errors_and_missing_files_are_config_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - id: a\n    raise: {state: DOWN\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: .* at line \d+") as caught:
        AlarmRules.from_yaml(broken)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        AlarmRules.from_yaml(tmp_path / "nope.yaml")


def test_a_valid_file_loads_with_the_documented_shorthands(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        """
version: 1
rules:
  - id: down
    alarm_type: MachineDown
    select: all
    raise: {state: DOWN, for_s: 120}
    escalate: [{severity: CRITICAL, after_s: 600}]
  - id: paint-climate
    alarm_type: BoothClimate
    select: {machine_types: [paint], lines: [line-1]}
    severity: MINOR
    raise: {channel: booth_temperature, op: outside, low: 19, high: 27}
    clear: {not: {channel: booth_temperature, op: outside, low: 20, high: 26}}
  - id: disabled
    alarm_type: Disabled
    enabled: false
    raise: {any: [{state: [DOWN, SETUP]}, {anomaly: {detector: robust-z}}]}
"""
    )
    rules = AlarmRules.from_yaml(path)
    assert [r.spec.id for r in rules.compiled] == ["down", "paint-climate"]
    assert rules.compiled[1].spec.select.matches("paint-1", "paint", "line-1")
    assert not rules.compiled[1].spec.select.matches("paint-1", "paint", "line-2")
    assert rules.compiled[0].spec.select.matches("anything", None, None)


def test_default_rules_reference_channels_the_simulated_machines_report() -> None:
    rules = AlarmRules.default()
    channels = {c["name"] for t in MACHINE_TYPES.values() for c in t.channels}
    used = {
        leaf.channel for r in rules.compiled for leaf in r.raise_leaves if isinstance(leaf, TelemetryLeaf)
    }
    assert used and used <= channels
    assert {r.spec.alarm_type for r in rules.compiled} >= {
        "HighVibration",
        "OverTemperature",
        "AnomalyDetected",
        "MachineDown",
        "Jam",
    }
    assert DEFAULT_RULES.name == "default_rules.yaml"
