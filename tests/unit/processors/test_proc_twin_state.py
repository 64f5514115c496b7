"""The live twin per machine: throttled telemetry, immediate state/alarm/OEE changes, snapshots."""

from __future__ import annotations

from typing import Any

import pytest
from fastavro.validation import validate

from processors.base import Record, derived_id
from processors.twin_state import TwinStateConfig, TwinStateTracker
from schemas.loader import load_schema
from twin.errors import SnapshotError

T0 = 1_764_000_000_000


def ms(seconds: float) -> int:
    return T0 + round(seconds * 1000)


def header(kind: str, machine: str, at: float) -> Record:
    event_id = derived_id("test-event", kind, machine, at)
    return {
        "event_id": event_id,
        "event_time": ms(at),
        "source": "test",
        "correlation_id": event_id,
        "line_id": "line-1",
        "machine_id": machine,
    }


def telemetry(machine: str, at: float, **channels: float | None) -> Record:
    channel_list = [{"name": k, "value": v, "unit": "degC"} for k, v in channels.items()]
    return header("telemetry", machine, at) | {"machine_type": "welder", "channels": channel_list}


def state(machine: str, at: float, value: str) -> Record:
    return header("state", machine, at) | {"previous": None, "state": value, "reason": ""}


def part(machine: str, at: float, good: bool = True) -> Record:
    return header("part", machine, at) | {
        "part_id": f"p-{at}",
        "cycle_time_s": 45.0,
        "ideal_cycle_time_s": 45.0,
        "good": good,
        "scrap_reason": None if good else "weld_porosity",
    }


def alarm(machine: str, at: float, alarm_id: str, status: str, severity: str = "MAJOR") -> Record:
    return header("alarm", machine, at) | {
        "alarm_id": alarm_id,
        "alarm_type": "OverTemperature",
        "rule_id": "hot",
        "severity": severity,
        "status": status,
        "start_time": ms(at),
    }


def kpi(machine: str, window_end_s: float, oee: float, size_s: int = 60, scope: str = "MACHINE") -> Record:
    record = header("kpi", machine, window_end_s) | {
        "scope": scope,
        "scope_id": machine if scope == "MACHINE" else "line-1",
        "window_start": ms(window_end_s - size_s),
        "window_end": ms(window_end_s),
        "window_size_s": size_s,
        "oee": oee,
    }
    del record["machine_id"]  # KPI windows carry scope_id, not machine_id
    return record


def run(tracker: TwinStateTracker, items: list[tuple[str, Record]]) -> list[Record]:
    out = []
    for topic, record in items:
        for e in tracker.process_one(topic, record):
            assert e.topic == "twin.state" and e.key == e.record["machine_id"]
            assert validate(e.record, load_schema("twin_state").parsed, raise_errors=True, strict=True)
            out.append(e.record)
    return out


def test_telemetry_is_published_at_most_once_per_interval_but_state_changes_at_once() -> None:
    tracker = TwinStateTracker("weld-1", TwinStateConfig(min_interval_s=1.0))
    readings = [("factory.telemetry", telemetry("weld-1", i * 0.2, temperature=50 + i)) for i in range(11)]
    out = run(tracker, readings)
    assert [r["event_time"] for r in out] == [ms(0), ms(1), ms(2)]
    assert out[-1]["signals"] == [{"name": "temperature", "value": 60.0, "unit": "degC"}]
    out = run(tracker, [("factory.state", state("weld-1", 2.1, "DOWN"))])
    assert [(r["state"], r["state_since"]) for r in out] == [("DOWN", ms(2.1))]
    # Throttled values still show in current(), and go out with the next published update.
    run(tracker, [("factory.telemetry", telemetry("weld-1", 2.5, temperature=70.0))])
    current = tracker.current()
    assert current is not None and current["signals"][0]["value"] == 70.0
    assert tracker.stats["throttled"] == 9


def test_record_shape_ids_and_correlation() -> None:
    tracker = TwinStateTracker("weld-1")
    first = telemetry("weld-1", 0, temperature=50.0, power=7.5)
    (record,) = run(tracker, [("factory.telemetry", first)])
    assert record["event_id"] == derived_id("twin-state", "weld-1", first["event_id"])
    assert record["correlation_id"] == first["correlation_id"]
    assert record["source"] == "processor:twin-state"
    # Not reported yet: shown IDLE since the machine was first heard of.
    assert record["state"] == "IDLE" and record["state_since"] == ms(0)
    assert record["machine_type"] == "welder" and record["line_id"] == "line-1"
    assert [s["name"] for s in record["signals"]] == ["temperature", "power"]
    assert record["oee"] is None and record["parts_good"] == record["parts_scrap"] == 0
    assert TwinStateTracker("cnc-9").current() is None  # nothing heard of it yet


def test_the_alarm_list_follows_raise_escalate_ack_and_clear() -> None:
    tracker = TwinStateTracker("weld-1", TwinStateConfig(min_interval_s=60))
    run(tracker, [("factory.telemetry", telemetry("weld-1", 0, temperature=50.0))])
    steps = [
        alarm("weld-1", 1, "a1", "ACTIVE_UNACK"),
        alarm("weld-1", 2, "a1", "ACTIVE_UNACK"),  # replayed: no change, no update
        alarm("weld-1", 3, "a1", "ACTIVE_UNACK", "CRITICAL"),
        alarm("weld-1", 4, "a2", "ACTIVE_UNACK", "MINOR"),
        alarm("weld-1", 5, "a1", "ACTIVE_ACK", "CRITICAL"),
        alarm("weld-1", 6, "a1", "CLEARED_ACK", "CRITICAL"),
        alarm("weld-1", 7, "a1", "CLEARED_ACK", "CRITICAL"),  # already gone
    ]
    out = run(tracker, [("twin.alarms", r) for r in steps])
    lists = [[(a["alarm_id"], a["severity"], a["status"]) for a in r["active_alarms"]] for r in out]
    assert lists == [
        [("a1", "MAJOR", "ACTIVE_UNACK")],
        [("a1", "CRITICAL", "ACTIVE_UNACK")],
        [("a1", "CRITICAL", "ACTIVE_UNACK"), ("a2", "MINOR", "ACTIVE_UNACK")],
        [("a1", "CRITICAL", "ACTIVE_ACK"), ("a2", "MINOR", "ACTIVE_UNACK")],
        [("a2", "MINOR", "ACTIVE_UNACK")],
    ]
    assert out[0]["correlation_id"] == steps[0]["correlation_id"]


def test_oee_of_the_latest_closed_window_of_the_shortest_size() -> None:
    tracker = TwinStateTracker("weld-1", TwinStateConfig(min_interval_s=3600))
    run(tracker, [("factory.telemetry", telemetry("weld-1", 0, temperature=50.0))])
    out = run(
        tracker,
        [
            ("twin.kpis", kpi("weld-1", 3600, 0.5, size_s=3600)),
            ("twin.kpis", kpi("weld-1", 60, 0.8)),  # a shorter window: it takes over
            ("twin.kpis", kpi("weld-1", 3600, 0.4, size_s=3600)),  # longer again: ignored
            ("twin.kpis", kpi("weld-1", 120, 0.75)),
            ("twin.kpis", kpi("weld-1", 60, 0.1)),  # older than the one shown: ignored
            ("twin.kpis", kpi("weld-1", 180, 0.75)),  # same OEE: nothing new to show
            ("twin.kpis", kpi("weld-1", 240, 0.9, scope="LINE")),  # line scope: not a machine's
        ],
    )
    assert [r["oee"] for r in out] == [0.5, 0.8, 0.75]
    fixed = TwinStateTracker("weld-1", TwinStateConfig(oee_window_s=3600))
    out = run(
        fixed, [("twin.kpis", kpi("weld-1", 60, 0.8)), ("twin.kpis", kpi("weld-1", 3600, 0.6, size_s=3600))]
    )
    assert [r["oee"] for r in out] == [0.6]


def test_parts_are_counted_and_published_with_the_telemetry_throttle() -> None:
    tracker = TwinStateTracker("weld-1", TwinStateConfig(min_interval_s=10))
    out = run(
        tracker,
        [
            ("factory.production", part("weld-1", 0)),
            ("factory.production", part("weld-1", 5, good=False)),
            ("factory.production", part("weld-1", 12)),
        ],
    )
    assert [(r["parts_good"], r["parts_scrap"]) for r in out] == [(1, 0), (2, 1)]


def test_snapshot_and_restore_continue_identically() -> None:
    items: list[tuple[str, Any]] = [
        ("factory.state", state("weld-1", 0, "RUNNING")),
        *[("factory.telemetry", telemetry("weld-1", i * 0.5, temperature=50.0 + i)) for i in range(10)],
        ("twin.alarms", alarm("weld-1", 5.2, "a1", "ACTIVE_UNACK")),
        ("twin.kpis", kpi("weld-1", 60, 0.7)),
        ("factory.production", part("weld-1", 6)),
        *[("factory.telemetry", telemetry("weld-1", 6 + i * 0.5, temperature=60.0 + i)) for i in range(10)],
        ("twin.alarms", alarm("weld-1", 11.2, "a1", "CLEARED_UNACK")),
    ]
    whole = run(TwinStateTracker("weld-1"), items)
    first = TwinStateTracker("weld-1")
    before = run(first, items[:13])
    second = TwinStateTracker("weld-1")
    second.restore(first.snapshot())
    assert second.snapshot() == first.snapshot()
    assert second.current() == first.current()
    assert before + run(second, items[13:]) == whole
    with pytest.raises(SnapshotError, match="'alarms'"):
        second.restore(b'{"format": "alarms", "version": 2}')
    # Snapshots written before the format names were shortened are read as version 1.
    old = TwinStateTracker("weld-1")
    old.restore(first.snapshot().replace(b'"format":"twin-state"', b'"format":"factory-twin/twin-state"'))
    assert old.current() == first.current()
