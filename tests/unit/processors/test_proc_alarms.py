"""The alarm engine: thresholds with hysteresis, combinations, durations, escalation, dedup, the
ack/clear lifecycle, raising/peak/clear values, deterministic ids, snapshots, and the default rules
on the simulated line. One engine per machine; ``engines`` routes a line's records to them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from fastavro.validation import validate

from processors.alarms import AlarmEngine, AlarmRules
from processors.base import Emit, Record, derived_id
from producers.records import EventMapper
from schemas.loader import load_schema
from sim import ScenarioSpec, Simulator, load_factory
from tests.unit.processors.fleet import Fleet
from twin.errors import ConfigError, SnapshotError

T0 = 1_764_000_000_000


def ms(seconds: float) -> int:
    return T0 + round(seconds * 1000)


def eid(*parts: object) -> str:
    return derived_id("test-event", *parts)


def telemetry(machine: str, at: float, machine_type: str = "cnc", **channels: float | None) -> Record:
    event_id = eid("telemetry", machine, at)
    return {
        "event_id": event_id,
        "event_time": ms(at),
        "source": "test",
        "correlation_id": event_id,
        "line_id": "line-1",
        "machine_id": machine,
        "machine_type": machine_type,
        "channels": [{"name": k, "value": v, "unit": "mm/s"} for k, v in channels.items()],
    }


def state(machine: str, at: float, value: str, reason: str = "") -> Record:
    event_id = eid("state", machine, at)
    return {
        "event_id": event_id,
        "event_time": ms(at),
        "source": "test",
        "correlation_id": event_id,
        "line_id": "line-1",
        "machine_id": machine,
        "previous": None,
        "state": value,
        "reason": reason,
    }


def anomaly(machine: str, at: float, score: float, correlation: str = "cause-1") -> Record:
    return {
        "event_id": eid("anomaly", machine, at),
        "event_time": ms(at),
        "source": "processor:anomaly",
        "correlation_id": correlation,
        "line_id": "line-1",
        "machine_id": machine,
        "score": score,
        "threshold": 1.0,
        "detector": "robust-z",
        "model_version": "1",
        "contributing": [{"name": "vibration_rms", "value": 9.0, "unit": "mm/s", "score": score}],
        "observed_event_id": eid("telemetry", machine, at),
    }


def command(alarm_id: str, machine: str, at: float, kind: str, user: str = "alice") -> Record:
    event_id = eid("command", alarm_id, kind, at)
    return {
        "event_id": event_id,
        "event_time": ms(at),
        "source": "xr:alice",
        "correlation_id": event_id,
        "alarm_id": alarm_id,
        "machine_id": machine,
        "command": kind,
        "user": user,
        "comment": None,
    }


def rules(*items: dict[str, Any]) -> AlarmRules:
    return AlarmRules.from_dict({"rules": list(items)})


def engines(r: AlarmRules) -> Fleet[AlarmEngine]:
    """One engine per machine, made on its first record."""
    return Fleet(lambda machine: AlarmEngine(machine, r))


VIBRATION = {
    "id": "vib",
    "alarm_type": "HighVibration",
    "raise": {"channel": "vibration_rms", "op": ">", "value": 4.5},
    "clear": {"channel": "vibration_rms", "op": "<", "value": 3.5},
}
DOWN = {
    "id": "down",
    "alarm_type": "MachineDown",
    "raise": {"state": "DOWN", "for_s": 120},
    "escalate": [{"severity": "CRITICAL", "after_s": 600}],
}


def feed(engine: Fleet[AlarmEngine], items: Iterable[tuple[str, Record]]) -> list[Record]:
    out: list[Emit] = []
    for topic, record in items:
        out += engine.process_one(topic, record)
    schema = load_schema("alarm").parsed
    for e in out:
        assert e.topic == "twin.alarms" and e.key == e.record["machine_id"]
        assert validate(
            e.record, schema, raise_errors=True, strict=True
        )  # what the sink's Avro encoder takes
    return [e.record for e in out]


def vib(values: Iterable[float], machine: str = "cnc-1", start: float = 0) -> list[tuple[str, Record]]:
    return [
        ("factory.telemetry", telemetry(machine, start + i, vibration_rms=v)) for i, v in enumerate(values)
    ]


def transitions(records: list[Record]) -> list[tuple[str, str, str]]:
    return [(r["alarm_type"], r["status"], r["severity"]) for r in records]


# -- thresholds and hysteresis ----------------------------------------------------------------------


def test_a_threshold_raises_once_and_a_value_hovering_between_the_thresholds_does_not_flap() -> None:
    engine = engines(rules(VIBRATION))
    hovering = [2.0, 4.6, 4.4, 4.7, 4.2, 4.6, 3.9, 4.8, 3.6, 4.51]
    out = feed(engine, vib(hovering))
    assert transitions(out) == [("HighVibration", "ACTIVE_UNACK", "MAJOR")]
    assert out[0]["event_time"] == ms(1) and out[0]["value"] == 4.6
    assert out[0]["source"] == "processor:alarms"
    # Below the clear threshold: cleared by the rule, once.
    out = feed(engine, vib([3.4, 3.0, 4.4, 3.2], start=len(hovering)))
    assert transitions(out) == [("HighVibration", "CLEARED_UNACK", "MAJOR")]
    assert out[0]["cleared_by"] == "rule" and out[0]["end_time"] == out[0]["clear_time"] == ms(10)
    assert engine["cnc-1"].active() == []


def test_a_cleared_alarm_keeps_the_value_and_message_that_raised_it_with_its_peak_and_clear_values() -> None:
    """What an operator reads in ``twin query alarms``: the raising value, not the clearing one."""
    rule = VIBRATION | {
        "message": "Vibration {value:.2f} {unit} on {machine_id} (limit 4.5)",
        "escalate": [{"severity": "CRITICAL", "when": {"channel": "vibration_rms", "op": ">", "value": 7.1}}],
    }
    engine = engines(rules(rule))
    raised, escalated, cleared = feed(engine, vib([2.0, 5.1, 8.7, 6.0, 2.28]))
    assert [r["status"] for r in (raised, escalated, cleared)] == [
        "ACTIVE_UNACK",
        "ACTIVE_UNACK",
        "CLEARED_UNACK",
    ]
    message = "Vibration 5.10 mm/s on cnc-1 (limit 4.5)"
    for r in (raised, escalated, cleared):
        assert r["value"] == 5.1 and r["message"] == message
    assert (raised["peak_value"], raised["clear_value"]) == (5.1, None)
    assert (escalated["peak_value"], escalated["clear_value"]) == (8.7, None)
    assert (cleared["peak_value"], cleared["clear_value"]) == (8.7, 2.28)


@pytest.mark.parametrize(
    ("condition", "values", "peak"),
    [
        ({"op": "<", "value": 1.0}, [0.8, 0.2, 0.5], 0.2),  # low pressure: the lowest is the worst
        ({"op": "outside", "low": 1.0, "high": 2.0}, [2.5, 0.2, 2.1], 0.2),  # furthest from the band
        ({"op": ">=", "value": 5.0}, [5.0, 9.0, 6.0], 9.0),
    ],
)
def test_the_peak_is_the_value_furthest_past_the_limit_in_the_rules_direction(
    condition: dict[str, float], values: list[float], peak: float
) -> None:
    engine = engines(
        rules({"id": "r", "alarm_type": "T", "raise": {"channel": "vibration_rms", **condition}})
    )
    feed(engine, vib(values))
    (active,) = engine["cnc-1"].active()
    assert active["value"] == values[0] and active["peak_value"] == peak


def test_an_alarm_an_operator_clears_has_no_clear_value() -> None:
    engine = engines(rules(VIBRATION))
    (raised,) = feed(engine, vib([5.0, 6.0]))
    (cleared,) = feed(engine, [("twin.alarm-commands", command(raised["alarm_id"], "cnc-1", 3, "CLEAR"))])
    assert cleared["cleared_by"] == "alice" and cleared["clear_value"] is None
    assert cleared["value"] == 5.0 and cleared["peak_value"] == 6.0


def test_without_hysteresis_the_same_hovering_value_would_flap() -> None:
    # The counterfactual of the test above: proves the clear threshold is what keeps it quiet.
    engine = engines(rules(VIBRATION | {"clear": None}))
    out = feed(engine, vib([2.0, 4.6, 4.4, 4.7, 4.2, 4.6]))
    assert len(out) == 5


def test_a_minimum_clear_duration_waits_for_the_value_to_stay_low() -> None:
    engine = engines(rules(VIBRATION | {"clear_after_s": 30}))
    feed(engine, vib([5.0]))
    # Low for 20 s, back up, then low for good: cleared 30 s after the value went low for good.
    values = [3.0] * 20 + [4.0] + [3.0] * 40
    out = feed(engine, vib(values, start=1))
    assert transitions(out) == [("HighVibration", "CLEARED_UNACK", "MAJOR")]
    assert out[0]["end_time"] == ms(22) and out[0]["clear_time"] == ms(52)


def test_for_s_debounces_a_spike() -> None:
    engine = engines(
        rules(VIBRATION | {"raise": {"channel": "vibration_rms", "op": ">", "value": 4.5, "for_s": 5}})
    )
    assert feed(engine, vib([5.0, 5.0, 5.0, 2.0, 5.0, 5.0, 5.0, 5.0])) == []
    out = feed(engine, vib([5.0], start=9))
    assert transitions(out) == [("HighVibration", "ACTIVE_UNACK", "MAJOR")]
    assert out[0]["start_time"] == ms(9)


def test_a_dropped_sample_neither_raises_nor_clears() -> None:
    engine = engines(rules(VIBRATION | {"clear": None}))
    out = feed(engine, [*vib([5.0]), ("factory.telemetry", telemetry("cnc-1", 1, vibration_rms=None))])
    assert transitions(out) == [("HighVibration", "ACTIVE_UNACK", "MAJOR")]
    assert len(engine["cnc-1"].active()) == 1


@pytest.mark.parametrize(
    ("op", "operands", "values", "raised"),
    [
        (">=", {"value": 5}, [4.9, 5.0], [False, True]),
        ("<", {"value": 1}, [1.0, 0.9], [False, True]),
        ("<=", {"value": 1}, [1.1, 1.0], [False, True]),
        ("==", {"value": 0}, [0.1, 0.0], [False, True]),
        ("!=", {"value": 0}, [0.0, 0.1], [False, True]),
        ("between", {"low": 1, "high": 2}, [0.5, 1.5], [False, True]),
        ("outside", {"low": 1, "high": 2}, [1.5, 2.5], [False, True]),
    ],
)
def test_threshold_operators(
    op: str, operands: dict[str, float], values: list[float], raised: list[bool]
) -> None:
    engine = engines(
        rules({"id": "r", "alarm_type": "T", "raise": {"channel": "vibration_rms", "op": op, **operands}})
    )
    got = [bool(feed(engine, vib([v], start=i))) for i, v in enumerate(values)]
    assert got == raised


def test_missing_raises_for_a_channel_that_stops_delivering_values_but_not_for_one_never_reported() -> None:
    rule = {
        "id": "drop",
        "alarm_type": "SensorDropout",
        "raise": {"channel": "vibration_rms", "op": "missing", "for_s": 3},
    }
    engine = engines(rules(rule))
    items = [("factory.telemetry", telemetry("cnc-1", i, vibration_rms=None)) for i in range(5)]
    items += [("factory.telemetry", telemetry("weld-1", i, "welder", temperature=50.0)) for i in range(5)]
    out = feed(engine, items)
    assert [(r["machine_id"], r["event_time"]) for r in out] == [("cnc-1", ms(3))]
    out = feed(engine, vib([2.0], start=5))
    assert transitions(out) == [("SensorDropout", "CLEARED_UNACK", "MAJOR")]


# -- combinations -----------------------------------------------------------------------------------


def test_all_needs_every_signal_and_any_needs_one() -> None:
    both = {
        "id": "both",
        "alarm_type": "LoadedVibration",
        "raise": {"all": [{"channel": "vibration_rms", "op": ">", "value": 4.5}, {"state": "RUNNING"}]},
    }
    either = {
        "id": "either",
        "alarm_type": "Trouble",
        "raise": {"any": [{"channel": "vibration_rms", "op": ">", "value": 4.5}, {"state": "DOWN"}]},
    }
    engine = engines(rules(both, either))
    out = feed(engine, [("factory.state", state("cnc-1", 0, "IDLE")), *vib([5.0], start=1)])
    assert transitions(out) == [("Trouble", "ACTIVE_UNACK", "MAJOR")]
    out = feed(engine, [("factory.state", state("cnc-1", 2, "RUNNING"))])
    assert transitions(out) == [("LoadedVibration", "ACTIVE_UNACK", "MAJOR")]
    # Vibration drops: both clear (their clear is "raise is false").
    out = feed(engine, vib([2.0], start=3))
    assert sorted(transitions(out)) == [
        ("LoadedVibration", "CLEARED_UNACK", "MAJOR"),
        ("Trouble", "CLEARED_UNACK", "MAJOR"),
    ]
    # DOWN alone raises the OR again, not the AND.
    out = feed(engine, [("factory.state", state("cnc-1", 4, "DOWN", "breakdown"))])
    assert transitions(out) == [("Trouble", "ACTIVE_UNACK", "MAJOR")]


def test_an_any_over_channels_clears_on_a_machine_lacking_one_of_them() -> None:
    rule = {
        "id": "hot",
        "alarm_type": "Hot",
        "raise": {
            "any": [
                {"channel": "temperature", "op": ">", "value": 70},
                {"channel": "oil_temperature", "op": ">", "value": 60},
            ]
        },
    }
    engine = engines(rules(rule))
    items = [
        ("factory.telemetry", telemetry("weld-1", i, "welder", temperature=v))
        for i, v in enumerate([75.0, 50.0])
    ]
    assert transitions(feed(engine, items)) == [
        ("Hot", "ACTIVE_UNACK", "MAJOR"),
        ("Hot", "CLEARED_UNACK", "MAJOR"),
    ]


# -- durations and escalation -----------------------------------------------------------------------


def down_for(engine: Fleet[AlarmEngine], seconds: float, ticks: Iterable[float]) -> list[Record]:
    """Machine DOWN at 10 s for ``seconds``; ``advance`` called at each tick in between."""
    out = feed(engine, [("factory.state", state("press-1", 10, "DOWN", "breakdown"))])
    for tick in ticks:
        if tick < 10 + seconds:
            out += [e.record for e in engine["press-1"].advance(ms(tick))]
    out += feed(engine, [("factory.state", state("press-1", 10 + seconds, "RUNNING", "repaired"))])
    return out


def test_down_for_longer_than_t_raises_at_exactly_t_and_clears_when_running_again() -> None:
    out = down_for(engines(rules(DOWN)), 300, ticks=range(11, 400, 7))
    assert transitions(out) == [
        ("MachineDown", "ACTIVE_UNACK", "MAJOR"),
        ("MachineDown", "CLEARED_UNACK", "MAJOR"),
    ]
    raised, cleared = out
    assert raised["start_time"] == raised["event_time"] == ms(130)
    assert raised["alarm_id"] == derived_id("alarm", "press-1", "MachineDown", ms(130))
    # The DOWN report caused it: its id and correlation follow through.
    down_id = eid("state", "press-1", 10)
    assert raised["correlation_id"] == down_id
    assert raised["event_id"] == derived_id(
        "alarm-event", raised["alarm_id"], "ACTIVE_UNACK", "MAJOR", down_id
    )
    assert cleared["clear_time"] == ms(310)
    # Raised after 120 s down; down 300 s in all when it cleared.
    assert cleared["value"] == 120.0 and cleared["peak_value"] == cleared["clear_value"] == 300.0


def test_down_for_less_than_t_raises_nothing() -> None:
    engine = engines(rules(DOWN))
    assert down_for(engine, 119, ticks=range(11, 200, 5)) == []
    assert engine["press-1"].active() == []


def test_duration_alarms_get_the_same_ids_whether_ticked_often_rarely_or_never() -> None:
    often = down_for(engines(rules(DOWN)), 300, ticks=[x / 2 for x in range(20, 800)])
    rarely = down_for(engines(rules(DOWN)), 300, ticks=[200])
    never = down_for(engines(rules(DOWN)), 300, ticks=[])
    assert often == rarely == never
    assert len(often) == 2


def test_escalation_by_duration_emits_once_per_severity_change() -> None:
    engine = engines(rules(DOWN))
    out = down_for(engine, 1200, ticks=range(11, 1300, 13))
    assert transitions(out) == [
        ("MachineDown", "ACTIVE_UNACK", "MAJOR"),
        ("MachineDown", "ACTIVE_UNACK", "CRITICAL"),
        ("MachineDown", "CLEARED_UNACK", "CRITICAL"),
    ]
    assert out[1]["event_time"] == ms(130 + 600)
    assert len({r["alarm_id"] for r in out}) == 1
    assert len({r["event_id"] for r in out}) == 3


def test_escalation_by_condition_and_it_never_drops_while_active() -> None:
    rule = VIBRATION | {
        "escalate": [{"severity": "CRITICAL", "when": {"channel": "vibration_rms", "op": ">", "value": 7.1}}]
    }
    engine = engines(rules(rule))
    out = feed(engine, vib([5.0, 8.0, 5.0, 9.0]))
    assert transitions(out) == [
        ("HighVibration", "ACTIVE_UNACK", "MAJOR"),
        ("HighVibration", "ACTIVE_UNACK", "CRITICAL"),
    ]
    # A fresh alarm straight above the escalation threshold is raised CRITICAL at once.
    engine = engines(rules(rule))
    assert transitions(feed(engine, vib([9.0]))) == [("HighVibration", "ACTIVE_UNACK", "CRITICAL")]


# -- dedup ------------------------------------------------------------------------------------------


def test_one_active_alarm_per_machine_and_type_repeated_triggers_update_it_silently() -> None:
    engine = engines(rules(VIBRATION))
    out = feed(engine, vib([5.0, 5.5, 6.0, 6.5]))
    out += feed(engine, vib([5.0, 5.5], machine="cnc-2"))
    assert [(r["machine_id"], r["status"]) for r in out] == [
        ("cnc-1", "ACTIVE_UNACK"),
        ("cnc-2", "ACTIVE_UNACK"),
    ]
    (active,) = engine["cnc-1"].active()
    assert active["alarm_id"] == out[0]["alarm_id"]
    assert active["value"] == 5.0 and active["peak_value"] == 6.5  # the raising value stays


def test_the_first_matching_rule_of_a_type_owns_it_so_specific_rules_override_generic_ones() -> None:
    specific = VIBRATION | {
        "id": "vib-press",
        "select": {"machine_types": ["press"]},
        "raise": {"channel": "vibration_rms", "op": ">", "value": 7.1},
    }
    generic = VIBRATION | {"select": "all"}
    engine = engines(rules(specific, generic))
    items = [("factory.telemetry", telemetry("press-1", 0, "press", vibration_rms=5.0))]
    items += [("factory.telemetry", telemetry("cnc-1", 0, "cnc", vibration_rms=5.0))]
    items += [("factory.telemetry", telemetry("press-1", 1, "press", vibration_rms=8.0))]
    out = feed(engine, items)
    assert [(r["machine_id"], r["rule_id"]) for r in out] == [("cnc-1", "vib"), ("press-1", "vib-press")]


def test_selectors_by_machine_and_line() -> None:
    engine = engines(rules(VIBRATION | {"select": {"machines": ["cnc-2"], "lines": ["line-1"]}}))
    out = feed(engine, vib([5.0]) + vib([5.0], machine="cnc-2"))
    assert [r["machine_id"] for r in out] == ["cnc-2"]


def test_a_new_alarm_after_a_cleared_one_gets_a_new_id() -> None:
    engine = engines(rules(VIBRATION))
    out = feed(engine, vib([5.0, 3.0, 5.0]))
    assert [r["status"] for r in out] == ["ACTIVE_UNACK", "CLEARED_UNACK", "ACTIVE_UNACK"]
    assert out[0]["alarm_id"] == out[1]["alarm_id"] != out[2]["alarm_id"]
    assert out[2]["alarm_id"] == derived_id("alarm", "cnc-1", "HighVibration", ms(2))


# -- lifecycle through commands ---------------------------------------------------------------------


def test_ack_then_clear() -> None:
    engine = engines(rules(VIBRATION))
    (raised,) = feed(engine, vib([5.0]))
    alarm_id = raised["alarm_id"]
    (acked,) = feed(engine, [("twin.alarm-commands", command(alarm_id, "cnc-1", 2, "ACK"))])
    assert acked["status"] == "ACTIVE_ACK" and acked["acked_by"] == "alice" and acked["ack_time"] == ms(2)
    assert acked["correlation_id"] == raised["correlation_id"]
    assert acked["event_id"] == derived_id(
        "alarm-event", alarm_id, "ACTIVE_ACK", "MAJOR", eid("command", alarm_id, "ACK", 2)
    )
    assert [a["status"] for a in engine["cnc-1"].active()] == ["ACTIVE_ACK"]
    (cleared,) = feed(engine, vib([3.0], start=3))
    assert cleared["status"] == "CLEARED_ACK" and cleared["cleared_by"] == "rule"
    # Fully closed: the engine forgets it, a later command is ignored and counted.
    assert feed(engine, [("twin.alarm-commands", command(alarm_id, "cnc-1", 5, "ACK"))]) == []
    assert engine.stats["command_unknown_alarm"] == 1


def test_every_lifecycle_step_carries_the_next_version_whatever_its_clock() -> None:
    """Stores order an alarm's records by version: an ACK stamped before the raise (the operator's
    clock behind the machine's) is still version 2."""
    engine = engines(rules(VIBRATION))
    (raised,) = feed(engine, vib([5.0], start=100))
    (acked,) = feed(engine, [("twin.alarm-commands", command(raised["alarm_id"], "cnc-1", 2, "ACK"))])
    (cleared,) = feed(engine, vib([3.0], start=101))
    assert acked["event_time"] < raised["event_time"]
    assert [r["version"] for r in (raised, acked, cleared)] == [1, 2, 3]
    other = feed(engine, vib([5.0], start=102))
    assert other[0]["version"] == 1  # a new alarm starts its own lifecycle


def test_clear_then_ack() -> None:
    engine = engines(rules(VIBRATION))
    (raised,) = feed(engine, vib([5.0]))
    (cleared,) = feed(engine, vib([3.0], start=1))
    assert cleared["status"] == "CLEARED_UNACK"
    assert engine["cnc-1"].active() == []
    (acked,) = feed(engine, [("twin.alarm-commands", command(raised["alarm_id"], "cnc-1", 9, "ACK"))])
    assert acked["status"] == "CLEARED_ACK" and acked["ack_time"] == ms(9) and acked["clear_time"] == ms(1)


def test_a_manual_clear_names_the_user_and_does_not_re_raise_until_the_condition_has_cleared() -> None:
    engine = engines(rules(VIBRATION))
    (raised,) = feed(engine, vib([5.0]))
    (cleared,) = feed(
        engine, [("twin.alarm-commands", command(raised["alarm_id"], "cnc-1", 2, "CLEAR", "bob"))]
    )
    assert cleared["status"] == "CLEARED_UNACK" and cleared["cleared_by"] == "bob"
    assert cleared["clear_time"] == cleared["end_time"] == ms(2)
    # Still vibrating: the operator's clear stands until the value has been below 3.5 once.
    assert feed(engine, vib([5.0, 6.0], start=3)) == []
    out = feed(engine, vib([3.0, 5.0], start=5))
    assert transitions(out) == [("HighVibration", "ACTIVE_UNACK", "MAJOR")]
    assert out[0]["alarm_id"] != raised["alarm_id"]
    # The cleared one still waits for its ACK.
    (acked,) = feed(engine, [("twin.alarm-commands", command(raised["alarm_id"], "cnc-1", 9, "ACK"))])
    assert acked["status"] == "CLEARED_ACK"


def test_an_acknowledged_alarm_cleared_by_hand_is_closed() -> None:
    engine = engines(rules(VIBRATION))
    (raised,) = feed(engine, vib([5.0]))
    alarm_id = raised["alarm_id"]
    out = feed(
        engine,
        [
            ("twin.alarm-commands", command(alarm_id, "cnc-1", 2, "ACK")),
            ("twin.alarm-commands", command(alarm_id, "cnc-1", 3, "CLEAR")),
        ],
    )
    assert [r["status"] for r in out] == ["ACTIVE_ACK", "CLEARED_ACK"]


def test_unknown_ids_and_repeated_commands_are_ignored_and_counted() -> None:
    engine = engines(rules(VIBRATION))
    (raised,) = feed(engine, vib([5.0]))
    ack = ("twin.alarm-commands", command(raised["alarm_id"], "cnc-1", 2, "ACK"))
    assert len(feed(engine, [ack])) == 1
    assert feed(engine, [ack]) == []  # delivered twice (at-least-once): no second event
    assert feed(engine, [("twin.alarm-commands", command(derived_id("nope"), "cnc-1", 3, "ACK"))]) == []
    assert (
        feed(engine, [("twin.alarm-commands", command(raised["alarm_id"], "unknown-machine", 3, "CLEAR"))])
        == []
    )
    assert engine.stats["command_no_change"] == 1
    assert engine.stats["command_unknown_alarm"] == 2
    assert len(engine["cnc-1"].active()) == 1


# -- anomalies --------------------------------------------------------------------------------------


def test_anomaly_alarms_carry_the_anomaly_correlation_and_clear_after_the_hold() -> None:
    rule = {
        "id": "anomaly",
        "alarm_type": "AnomalyDetected",
        "severity": "MINOR",
        "raise": {"anomaly": {"detector": "robust-z", "score_ratio": 2.0, "hold_s": 60}},
        "escalate": [{"severity": "MAJOR", "when": {"anomaly": {"score_ratio": 4.0, "hold_s": 60}}}],
    }
    engine = engines(rules(rule))
    assert feed(engine, [("twin.anomalies", anomaly("cnc-1", 0, 1.5))]) == []  # below 2 x threshold
    out = feed(engine, [("twin.anomalies", anomaly("cnc-1", 10, 2.5, correlation="root-cause"))])
    assert transitions(out) == [("AnomalyDetected", "ACTIVE_UNACK", "MINOR")]
    assert out[0]["correlation_id"] == "root-cause" and out[0]["value"] == 2.5
    out = feed(engine, [("twin.anomalies", anomaly("cnc-1", 40, 5.0, correlation="other"))])
    assert transitions(out) == [("AnomalyDetected", "ACTIVE_UNACK", "MAJOR")]
    assert out[0]["correlation_id"] == "root-cause"  # one cause chain per alarm
    # Quiet for the hold time after the last matching anomaly: cleared at exactly 40 + 60 s.
    out = [e.record for e in engine["cnc-1"].advance(ms(200))]
    assert transitions(out) == [("AnomalyDetected", "CLEARED_UNACK", "MAJOR")]
    assert out[0]["clear_time"] == ms(100)


# -- remaining useful life --------------------------------------------------------------------------


def rul(
    machine: str, at: float, low: float, estimate: float, high: float, correlation: str = "wear"
) -> Record:
    return {
        "event_id": eid("rul", machine, at),
        "event_time": ms(at),
        "source": "processor:maintenance",
        "correlation_id": correlation,
        "line_id": "line-1",
        "machine_id": machine,
        "component": "machine",
        "rul_s": estimate,
        "rul_low_s": low,
        "rul_high_s": high,
        "band": 0.8,
        "capped": False,
        "model_version": "rul-1",
        "contributing": [],
        "observed_event_id": eid("telemetry", machine, at),
    }


def test_the_shipped_rul_rule_warns_on_a_held_short_estimate_and_clears_after_maintenance() -> None:
    engine = engines(AlarmRules.default())
    assert feed(engine, [("twin.maintenance", rul("cnc-1", 0, 5000, 7000, 9000))]) == []
    # One low estimate that recovers is not a trend: the rule holds it 5 minutes.
    assert feed(engine, [("twin.maintenance", rul("cnc-1", 10, 2000, 3000, 6000, correlation="blip"))]) == []
    assert feed(engine, [("twin.maintenance", rul("cnc-1", 70, 5000, 7000, 9000))]) == []
    assert (
        feed(engine, [("twin.maintenance", rul("cnc-1", 130, 2000, 3000, 6000, correlation="bearing"))]) == []
    )
    out = [e.record for e in engine["cnc-1"].advance(ms(500))]
    assert transitions(out) == [("MaintenanceDue", "ACTIVE_UNACK", "WARNING")]
    assert out[0]["start_time"] == ms(430) and out[0]["correlation_id"] == "bearing"
    assert out[0]["value"] == 3000 and "may fail in about 50 min" in out[0]["message"]
    out = feed(engine, [("twin.maintenance", rul("cnc-1", 520, 400, 800, 2500))])
    assert transitions(out) == [("MaintenanceDue", "ACTIVE_UNACK", "MAJOR")]
    assert out[0]["peak_value"] == 800  # shorter life is worse
    # Maintenance renewed the machine: the estimate is far off again; cleared 60 s later.
    feed(engine, [("twin.maintenance", rul("cnc-1", 600, 20000, 30000, 40000))])
    out = feed(engine, [("twin.maintenance", rul("cnc-1", 670, 20000, 30000, 40000))])
    assert transitions(out) == [("MaintenanceDue", "CLEARED_UNACK", "MAJOR")]


def test_a_rul_condition_needs_one_limit() -> None:
    with pytest.raises(ConfigError, match="exactly one of 'below_s' and 'above_s'"):
        rules({"id": "r", "alarm_type": "T", "raise": {"rul": {"bound": "low"}}})


# -- determinism and snapshots ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def line_events() -> list[tuple[str, Record]]:
    """Two simulated hours of the default line (telemetry and state), as the engine gets them."""
    sim = Simulator(load_factory(), seed=1, start_time_ms=T0)
    mapper = EventMapper(seed=1)
    out = (mapper.map(e) for e in sim.run(until_ms=T0 + 7_200_000))
    return [(o.topic, o.record) for o in out if o.topic in ("factory.telemetry", "factory.state")]


@pytest.fixture(scope="module")
def default_alarms(line_events: list[tuple[str, Record]]) -> list[Record]:
    return feed(engines(AlarmRules.default()), line_events)


def test_the_same_input_gives_the_same_alarm_records(
    line_events: list[tuple[str, Record]], default_alarms: list[Record]
) -> None:
    again = feed(engines(AlarmRules.default()), line_events)
    assert again == default_alarms
    assert len({r["event_id"] for r in again}) == len(again)


@pytest.mark.parametrize("split_s", [1200, 2400, 3500])
def test_snapshot_and_restore_continue_exactly_where_the_engine_stopped(
    line_events: list[tuple[str, Record]], default_alarms: list[Record], split_s: int
) -> None:
    split = next(i for i, (_, r) in enumerate(line_events) if r["event_time"] >= ms(split_s))
    first = engines(AlarmRules.default())
    before = feed(first, line_events[:split])
    snapshots = first.snapshots()
    assert any(first[m].active() for m in first.members)  # split while an alarm is active
    second = engines(AlarmRules.default())
    second.restore(snapshots)
    assert second.snapshots() == snapshots
    after = feed(second, line_events[split:])
    assert before + after == default_alarms


def test_a_restored_engine_still_takes_commands_for_its_alarms() -> None:
    engine = engines(rules(VIBRATION))
    (raised,) = feed(engine, vib([5.0]))
    other = engines(rules(VIBRATION))
    other.restore({"cnc-1": engine["cnc-1"].snapshot()})
    (acked,) = feed(other, [("twin.alarm-commands", command(raised["alarm_id"], "cnc-1", 2, "ACK"))])
    assert acked["status"] == "ACTIVE_ACK"
    assert feed(other, vib([3.0], start=3))[0]["status"] == "CLEARED_ACK"


def test_a_foreign_or_damaged_snapshot_is_refused() -> None:
    engine = AlarmEngine("cnc-1", rules(VIBRATION))
    with pytest.raises(SnapshotError, match="not JSON"):
        engine.restore(b"\x00garbage")
    with pytest.raises(SnapshotError, match="'other'"):
        engine.restore(b'{"format": "other"}')
    with pytest.raises(SnapshotError, match="version 99"):
        engine.restore(b'{"format": "alarms", "version": 99}')


def test_a_version_1_snapshot_is_upgraded_and_the_engine_goes_on() -> None:
    """Version 1 kept one value per alarm (the last): it becomes the peak; a rule-cleared alarm's
    value was its clearing value."""
    engine = engines(rules(VIBRATION))
    (raised,) = feed(engine, vib([5.0, 6.0]))
    feed(engine, vib([5.5, 3.0], machine="cnc-2"))
    for machine, value in (("cnc-1", 6.0), ("cnc-2", 3.0)):
        v2 = json.loads(engine[machine].snapshot())
        for alarm in v2["alarms"]:
            del alarm["peak_value"], alarm["clear_value"]
            alarm["value"] = value
        v1 = json.dumps({**v2, "format": "factory-twin/alarms", "version": 1}).encode()
        restored = AlarmEngine(machine, rules(VIBRATION))
        restored.restore(v1)
        upgraded = json.loads(restored.snapshot())
        assert upgraded["format"] == "alarms" and upgraded["version"] == 2
        (alarm,) = upgraded["alarms"]
        assert alarm["peak_value"] == value
        assert alarm["clear_value"] == (3.0 if machine == "cnc-2" else None)
    restored = AlarmEngine("cnc-1", rules(VIBRATION))
    restored.restore(json.dumps({**json.loads(engine["cnc-1"].snapshot()), "version": 1}).encode())
    (cleared,) = [e.record for e in restored.process_one(*vib([3.0], start=5)[0])]
    assert cleared["alarm_id"] == raised["alarm_id"] and cleared["status"] == "CLEARED_UNACK"


def test_a_topic_the_engine_does_not_consume_changes_nothing() -> None:
    engine = AlarmEngine("cnc-1", rules(VIBRATION))
    before = engine.snapshot()
    assert engine.process_one("factory.production", {}) == []
    assert engine.snapshot() == before


# -- the default rules on the simulated line --------------------------------------------------------


def raised_in(
    alarms: list[Record], machine: str, alarm_type: str, start_s: float, end_s: float
) -> list[Record]:
    return [
        r
        for r in alarms
        if r["status"] == "ACTIVE_UNACK"
        and r["machine_id"] == machine
        and r["alarm_type"] == alarm_type
        and ms(start_s) <= r["start_time"] <= ms(end_s)
    ]


def test_default_rules_raise_the_expected_alarms_on_the_default_scenario(
    default_alarms: list[Record],
) -> None:
    raised = [
        r for r in default_alarms if r["status"] == "ACTIVE_UNACK" and r["event_time"] == r["start_time"]
    ]
    per_type = Counter(r["alarm_type"] for r in raised)
    print("alarms raised per type in 2 simulated hours:", dict(sorted(per_type.items())))
    # press-1 jams 3300-3600 s: Jam at once, MachineDown after 2 minutes, both cleared at the end.
    assert raised_in(default_alarms, "press-1", "Jam", 3300, 3301)
    assert raised_in(default_alarms, "press-1", "MachineDown", 3419, 3421)
    cleared = {
        (r["alarm_type"], r["clear_time"])
        for r in default_alarms
        if r["machine_id"] == "press-1" and r["status"] == "CLEARED_UNACK"
    }
    assert cleared == {("Jam", ms(3600)), ("MachineDown", ms(3600))}
    # weld-1 overheats 2100-2700 s; the torch cools with a lag of minutes.
    (hot,) = raised_in(default_alarms, "weld-1", "OverTemperature", 2100, 2700)
    (hot_cleared,) = [
        r for r in default_alarms if r["alarm_id"] == hot["alarm_id"] and r["status"] == "CLEARED_UNACK"
    ]
    assert ms(2700) < hot_cleared["clear_time"] < ms(3300)
    # cnc-1 bearing wear 600-1500 s: vibration climbs over 4.5 mm/s.
    assert raised_in(default_alarms, "cnc-1", "HighVibration", 600, 1500)
    # No storm: each fault gives a handful of alarms, none flaps.
    assert sum(per_type.values()) <= 10
    assert all(n <= 2 for n in Counter((r["machine_id"], r["alarm_type"]) for r in raised).values())
    # Every alarm raised in the scenario has cleared by the end (the faults all end).
    cleared_ids = {r["alarm_id"] for r in default_alarms if r["status"] == "CLEARED_UNACK"}
    assert {r["alarm_id"] for r in raised} == cleared_ids


def test_default_rules_are_quiet_without_faults() -> None:
    quiet = load_factory().model_copy(update={"scenario": ScenarioSpec()})
    sim = Simulator(quiet, seed=3, start_time_ms=T0)
    mapper = EventMapper(seed=3)
    events = ((o.topic, o.record) for o in map(mapper.map, sim.run(until_ms=T0 + 3_600_000)))
    out = feed(engines(AlarmRules.default()), ((t, r) for t, r in events if t != "factory.production"))
    # Random breakdowns are real stops and may raise MachineDown; nothing else should fire.
    assert {r["alarm_type"] for r in out} <= {"MachineDown", "Jam"}


# -- messages operators read -------------------------------------------------------------------------


def test_messages_name_the_channel_the_peak_and_durations_in_human_units() -> None:
    vibration = {**VIBRATION, "message": "{channel} {value:.1f} {unit} (peak {peak:.1f}) for {duration}"}
    engine = engines(rules(vibration))
    out = feed(engine, vib([5.0, 6.5, 5.5, 3.0], start=0))
    assert [r["message"] for r in out] == [
        "vibration_rms 5.0 mm/s (peak 5.0) for 0 s",
        "vibration_rms 5.0 mm/s (peak 6.5) for 3 s",  # the clear: the raising value, the peak, how long
    ]
    down = {**DOWN, "message": "{machine_id} down for {peak_duration}"}
    raised, cleared = down_for(engines(rules(down)), 18_360, ticks=range(11, 18_400, 60))[::2][:2]
    assert raised["message"] == "press-1 down for 2 min"
    assert cleared["message"] == "press-1 down for 5 h 6 min"


def test_severities_are_case_insensitive() -> None:
    r = rules({**VIBRATION, "severity": "critical", "escalate": [{"severity": "Critical", "after_s": 5}]})
    assert r.compiled[0].spec.severity == "CRITICAL"


def test_a_yaml_boolean_where_text_belongs_gets_a_hint(tmp_path: Path) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text("rules:\n  - id: on\n    alarm_type: Hot\n    raise: {channel: t, op: '>', value: 1}\n")
    with pytest.raises(ConfigError, match="quote it") as info:
        AlarmRules.from_yaml(f)
    assert "\n" not in str(info.value)


def test_a_rule_naming_a_channel_no_machine_reports_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import processors.alarms.engine as engine_module

    monkeypatch.setattr(engine_module, "WATCH_READINGS", 10)
    typo = {**VIBRATION, "id": "typo", "raise": {"channel": "vibraton_rms", "op": ">", "value": 4.5}}
    del typo["clear"]
    typo["select"] = {"machines": ["cnc-1", "cnc-2"]}
    # Selecting all machines is not checked: a worker sees only its partitions' machines.
    everyone = {**typo, "id": "everyone", "alarm_type": "Typo2", "select": "all"}
    # A rule whose machines this worker never saw is not its concern.
    elsewhere = {**typo, "id": "elsewhere", "alarm_type": "Typo3", "select": {"machines": ["pump-9"]}}
    engine = engines(rules(VIBRATION, {**typo, "alarm_type": "Typo"}, everyone, elsewhere))
    with caplog.at_level("WARNING", logger="processors.alarms.engine"):
        feed(engine, vib([1.0] * 30))
        feed(engine, vib([1.0] * 30, machine="cnc-2"))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert (
        "alarm rule typo names channel 'vibraton_rms', which none of the machines it selects" in warnings[0]
    )


def test_the_default_rules_name_only_channels_the_default_line_reports(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = engines(AlarmRules.default())
    mapper = EventMapper(seed=2)
    sim = Simulator(load_factory(), seed=2, start_time_ms=T0)
    with caplog.at_level("WARNING", logger="processors.alarms.engine"):
        for event in sim.run(until_ms=T0 + 3_600_000):
            o = mapper.map(event)
            engine.process_one(o.topic, o.record)
    assert engine_rules_warned(caplog) == []


def engine_rules_warned(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "processors.alarms.engine"]


def test_a_planned_maintenance_stop_raises_no_machine_down() -> None:
    engine = engines(AlarmRules.default())
    feed(
        engine,
        [
            ("factory.state", state("cnc-1", 0, "RUNNING")),
            ("factory.state", state("cnc-1", 10, "DOWN", "maintenance")),
        ],
    )
    assert [e.record for e in engine["cnc-1"].advance(ms(1800))] == []
    out = feed(engine, [("factory.state", state("cnc-1", 1900, "DOWN", "breakdown"))])
    out += [e.record for e in engine["cnc-1"].advance(ms(2100))]
    assert transitions(out) == [("MachineDown", "ACTIVE_UNACK", "MAJOR")]
