"""MACHINE-scope KPI windows: hand-computed OEE, windows, lateness, MTBF/MTTR, snapshots, the simulator."""

from __future__ import annotations

import doctest
import itertools
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import processors.kpi.config
import processors.kpi.machine
from processors.base import Emit, Record, derived_id
from processors.kpi import KpiConfig, MachineKpis
from producers.records import EventMapper
from sim import Simulator, load_factory
from sim.events import TelemetryEvent
from tests.unit.processors.fleet import Fleet
from twin.errors import ConfigError, KpiError, SnapshotError

S = 1000  # ms per second: times below read as seconds
T0 = 1_764_000_000_000  # an hour boundary (epoch ms), so 60 s and 3600 s windows align with it
_ids = itertools.count()


def state(
    t_s: float, st_: str, reason: str = "", previous: str | None = None, m: str = "m1"
) -> tuple[str, Record]:
    return "factory.state", {
        "event_id": f"s{next(_ids)}",
        "event_time": T0 + round(t_s * S),
        "source": "test",
        "correlation_id": "c",
        "line_id": "line-1",
        "machine_id": m,
        "previous": previous,
        "state": st_,
        "reason": reason,
    }


def part(
    t_s: float, good: bool = True, cycle: float = 10.0, ideal: float = 8.0, m: str = "m1"
) -> tuple[str, Record]:
    return "factory.production", {
        "event_id": f"p{next(_ids)}",
        "event_time": T0 + round(t_s * S),
        "source": "test",
        "correlation_id": "c",
        "line_id": "line-1",
        "machine_id": m,
        "part_id": f"part-{next(_ids)}",
        "cycle_time_s": cycle,
        "ideal_cycle_time_s": ideal,
        "good": good,
        "scrap_reason": None if good else "defect",
    }


def machines(config: KpiConfig | None = None) -> Fleet[MachineKpis]:
    """One ``MachineKpis`` per machine, as the machine stage keeps them; ``advance`` reaches all."""
    return Fleet(lambda machine: MachineKpis(machine, config))


def run(
    kpis: MachineKpis | Fleet[MachineKpis], events: list[tuple[str, Record]], until_s: float | None = None
) -> list[Record]:
    out: list[Emit] = []
    for topic, record in events:
        out += kpis.process_one(topic, record)
    if until_s is not None:
        out += kpis.advance(T0 + round(until_s * S))
    assert all(e.topic == "twin.kpis" and e.key == e.record["line_id"] for e in out)
    return [e.record for e in out]


def window(records: list[Record], start_s: float, size_s: int = 60, m: str = "m1") -> Record:
    found = [
        r
        for r in records
        if r["scope_id"] == m and r["window_size_s"] == size_s and r["window_start"] == T0 + start_s * S
    ]
    assert len(found) == 1, f"{len(found)} windows of {size_s} s at {start_s} s"
    return found[0]


MINUTE = KpiConfig(window_sizes_s=(60,), allowed_lateness_s=0)


def test_hand_computed_oee_of_one_minute() -> None:
    kpis = MachineKpis("m1", MINUTE)
    records = run(
        kpis,
        [
            state(0, "RUNNING", "start"),
            part(10, cycle=9.0),
            part(20, cycle=10.0),
            part(30, good=False, cycle=11.0),
            state(30, "DOWN", "breakdown", "RUNNING"),
            state(45, "RUNNING", "repaired", "DOWN"),
            state(50, "IDLE", "planned_break", "RUNNING"),
            state(70, "SETUP", "changeover", "IDLE"),
            state(100, "RUNNING", "changeover_done", "SETUP"),
        ],
        until_s=120,
    )
    w = window(records, 0)
    # RUNNING 0-30, DOWN 30-45, RUNNING 45-50, planned break 50-60.
    # planned = 60 - 10 = 50 s; run = 50 - 15 (DOWN) = 35 s.
    assert (w["planned_time_s"], w["run_time_s"]) == (50.0, 35.0)
    assert (w["total_count"], w["good_count"], w["ideal_cycle_time_s"]) == (3, 2, 8.0)
    assert w["availability"] == pytest.approx(35 / 50)  # 0.7
    assert w["performance"] == pytest.approx(3 * 8 / 35)  # 0.6857
    assert w["quality"] == pytest.approx(2 / 3)
    assert w["oee"] == pytest.approx(0.7 * (24 / 35) * (2 / 3))  # = 24/50 * 2/3 = 0.32
    assert w["oee"] == pytest.approx(0.32)
    assert w["throughput_per_hour"] == pytest.approx(2 * 60)  # 2 good parts in 1/60 h
    assert w["mean_cycle_time_s"] == pytest.approx((9 + 10 + 11) / 3)
    assert w["scrap_rate"] == pytest.approx(1 / 3)
    assert (w["failures"], w["mtbf_s"], w["mttr_s"]) == (1, 35.0, 15.0)  # MTBF 35 s run / 1 failure
    assert w["late_events"] == 0

    # Next minute: break 60-70 (planned stop), SETUP 70-100 (availability loss), RUNNING 100-120.
    # planned = 60 - 10 = 50; run = 50 - 30 = 20; no parts: performance 0, quality 1, OEE 0.
    w2 = window(records, 60)
    assert (w2["planned_time_s"], w2["run_time_s"], w2["availability"]) == (50.0, 20.0, pytest.approx(0.4))
    assert (w2["total_count"], w2["performance"], w2["quality"], w2["oee"]) == (0, 0.0, 1.0, 0.0)
    assert w2["ideal_cycle_time_s"] == 8.0  # the machine's last known ideal cycle time
    assert (w2["mean_cycle_time_s"], w2["scrap_rate"], w2["throughput_per_hour"]) == (None, 0.0, 0.0)
    assert (w2["failures"], w2["mtbf_s"], w2["mttr_s"]) == (0, None, None)  # SETUP is no failure


def test_record_identity_fits_the_contract() -> None:
    records = run(MachineKpis("m1", MINUTE), [state(0, "RUNNING", "start")], until_s=60)
    (w,) = records
    expected_id = derived_id("kpi", "MACHINE", "m1", 60, T0)
    assert w["event_id"] == expected_id == w["correlation_id"]
    assert (w["source"], w["scope"], w["line_id"]) == ("processor:kpi", "MACHINE", "line-1")
    assert (w["window_start"], w["window_end"], w["event_time"]) == (T0, T0 + 60 * S, T0 + 60 * S)


def test_record_validates_against_the_avro_schema() -> None:
    from fastavro.validation import validate

    from schemas import load_schema

    schema = load_schema("kpi_window").parsed
    records = run(
        MachineKpis("m1", MINUTE),
        [
            state(0, "RUNNING", "start"),
            part(5),
            state(10, "DOWN", "jam"),
            state(20, "RUNNING", "jam_cleared"),
        ],
        until_s=120,
    )
    assert records
    for r in records:
        assert validate(r, schema, raise_errors=True)


def test_state_interval_spanning_windows_is_split_and_repair_counted_where_it_ends() -> None:
    kpis = MachineKpis("m1", KpiConfig(window_sizes_s=(60, 3600), allowed_lateness_s=0))
    records = run(
        kpis,
        [
            state(0, "RUNNING", "start"),
            state(100, "DOWN", "breakdown", "RUNNING"),
            state(250, "RUNNING", "repaired", "DOWN"),
        ],
        until_s=3600,
    )
    # DOWN 100-250 s: 20 s of [60,120), all of [120,180) and [180,240), 10 s of [240,300).
    assert window(records, 60)["run_time_s"] == 40.0
    assert (window(records, 60)["failures"], window(records, 60)["mttr_s"]) == (1, None)
    middle = window(records, 120)
    assert (middle["planned_time_s"], middle["run_time_s"], middle["availability"]) == (60.0, 0.0, 0.0)
    assert (middle["performance"], middle["failures"], middle["mtbf_s"]) == (0.0, 0, None)
    last = window(records, 240)
    assert (last["run_time_s"], last["failures"], last["mttr_s"]) == (50.0, 0, 150.0)  # 250 - 100
    hour = window(records, 0, size_s=3600)
    assert (hour["run_time_s"], hour["failures"]) == (3600.0 - 150, 1)
    assert (hour["mtbf_s"], hour["mttr_s"]) == (3450.0, 150.0)
    assert len([r for r in records if r["window_size_s"] == 60]) == 60


def test_mtbf_and_mttr_count_failures_not_maintenance() -> None:
    records = run(
        MachineKpis("m1", MINUTE),
        [
            state(0, "RUNNING", "start"),
            state(10, "DOWN", "breakdown", "RUNNING"),
            state(20, "RUNNING", "repaired", "DOWN"),
            state(30, "DOWN", "jam", "RUNNING"),
            state(50, "RUNNING", "jam_cleared", "DOWN"),
            state(52, "DOWN", "maintenance", "RUNNING"),
            state(55, "RUNNING", "maintenance_done", "DOWN"),
        ],
        until_s=60,
    )
    (w,) = records
    # run = 60 - 10 - 20 - 3 (maintenance: an availability loss, not a failure) = 27 s.
    assert w["run_time_s"] == 27.0
    assert w["failures"] == 2
    assert w["mtbf_s"] == pytest.approx(27 / 2)
    assert w["mttr_s"] == pytest.approx((10 + 20) / 2)


def test_a_down_that_changes_reason_is_one_failure() -> None:
    records = run(
        MachineKpis("m1", MINUTE),
        [
            state(0, "RUNNING", "start"),
            state(10, "DOWN", "breakdown", "RUNNING"),
            state(20, "DOWN", "jam", "DOWN"),
            state(40, "RUNNING", "jam_cleared", "DOWN"),
        ],
        until_s=60,
    )
    (w,) = records
    assert (w["failures"], w["mttr_s"], w["run_time_s"]) == (1, 30.0, 30.0)


def test_starved_and_blocked_are_run_time_and_configurable() -> None:
    events = [
        state(0, "RUNNING", "start"),
        state(20, "STARVED", "upstream_empty", "RUNNING"),
        state(40, "BLOCKED", "downstream_full", "STARVED"),
        part(20, ideal=10.0),
    ]
    default = run(MachineKpis("m1", MINUTE), events, until_s=60)[0]
    # Starved/blocked time stays in run time: availability 1, the loss shows in performance 10/60.
    assert (default["availability"], default["performance"]) == (1.0, pytest.approx(10 / 60))
    strict = KpiConfig(
        window_sizes_s=(60,),
        allowed_lateness_s=0,
        unplanned_stop_states=frozenset({"DOWN", "STARVED", "BLOCKED"}),
    )
    w = run(MachineKpis("m1", strict), events, until_s=60)[0]
    assert (w["availability"], w["performance"], w["failures"]) == (pytest.approx(20 / 60), 0.5, 0)


def test_setup_can_be_configured_as_planned_stop() -> None:
    events = [state(0, "RUNNING", "start"), state(30, "SETUP", "changeover", "RUNNING")]
    assert run(MachineKpis("m1", MINUTE), events, until_s=60)[0]["availability"] == 0.5
    planned_setup = KpiConfig(
        window_sizes_s=(60,), allowed_lateness_s=0, planned_stop_states=frozenset({"SETUP"})
    )
    w = run(MachineKpis("m1", planned_setup), events, until_s=60)[0]
    assert (w["planned_time_s"], w["availability"]) == (30.0, 1.0)


def test_zero_planned_time_and_zero_parts() -> None:
    records = run(MachineKpis("m1", MINUTE), [state(-5, "IDLE", "planned_break")], until_s=60)
    w = window(records, 0)
    assert (w["planned_time_s"], w["run_time_s"], w["availability"], w["performance"], w["oee"]) == (
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    )
    assert (w["quality"], w["scrap_rate"], w["ideal_cycle_time_s"], w["mean_cycle_time_s"]) == (
        1.0,
        0.0,
        0.0,
        None,
    )


def test_time_before_the_first_state_report_is_not_planned() -> None:
    records = run(MachineKpis("m1", MINUTE), [part(10), state(20, "RUNNING", "start")], until_s=60)
    w = window(records, 0)
    assert (w["planned_time_s"], w["run_time_s"], w["total_count"]) == (40.0, 40.0, 1)


def test_performance_is_clamped_to_one() -> None:
    # Parts finish in a window whose run time was mostly in the previous one: 3 x 30 s in 60 s.
    records = run(
        MachineKpis("m1", MINUTE),
        [state(0, "RUNNING", "start"), part(1, ideal=30), part(2, ideal=30), part(3, ideal=30)],
        until_s=60,
    )
    assert records[0]["performance"] == 1.0
    assert records[0]["oee"] == 1.0


def test_events_beyond_lateness_are_counted_late_not_in_figures() -> None:
    kpis = MachineKpis("m1", KpiConfig(window_sizes_s=(60,), allowed_lateness_s=30))
    out = run(kpis, [state(0, "RUNNING", "start"), part(10), part(50), part(80)])
    assert out == []  # [0,60) closes at 60 + 30 s
    out = run(kpis, [part(95)])  # watermark 95 >= 90: [0,60) closes
    assert [(r["window_start"], r["total_count"], r["late_events"]) for r in out] == [(T0, 2, 0)]
    # Within lateness for [60,120) (closes at 150): counted. Too late for [0,60): counted as late.
    out = run(kpis, [part(70), part(20), state(40, "DOWN", "breakdown", "RUNNING")], until_s=150)
    w = window(out, 60)
    assert (w["total_count"], w["late_events"]) == (3, 2)
    # The late DOWN is not counted as a failure, but the state it reports holds from then on.
    assert (w["failures"], w["run_time_s"], w["availability"]) == (0, 0.0, 0.0)


def test_late_for_minutes_still_counts_in_the_hour() -> None:
    kpis = MachineKpis("m1", KpiConfig(window_sizes_s=(60, 3600), allowed_lateness_s=0))
    run(kpis, [state(0, "RUNNING", "start"), part(10), part(70)])
    out = run(kpis, [part(30)], until_s=3600)
    assert window(out, 60)["late_events"] == 1
    hour = window(out, 0, size_s=3600)
    assert (hour["total_count"], hour["late_events"]) == (3, 0)


def test_out_of_order_within_lateness_equals_in_order() -> None:
    config = KpiConfig(window_sizes_s=(60,), allowed_lateness_s=30)
    events = [
        state(0, "RUNNING", "start"),
        part(10),
        state(20, "DOWN", "jam", "RUNNING"),
        part(55),
        state(70, "RUNNING", "jam_cleared", "DOWN"),
        part(80),
    ]
    in_order = run(MachineKpis("m1", config), events, until_s=500)
    shuffled = run(MachineKpis("m1", config), [events[i] for i in (1, 3, 0, 5, 2, 4)], until_s=500)
    assert shuffled == in_order


def test_an_earlier_event_within_lateness_opens_an_earlier_window() -> None:
    kpis = MachineKpis("m1", KpiConfig(window_sizes_s=(60,), allowed_lateness_s=45))
    out = run(kpis, [state(61, "DOWN", "jam"), state(59, "RUNNING", "start")], until_s=180)
    assert [(r["window_start"], r["run_time_s"], r["late_events"]) for r in out] == [
        (T0, 1.0, 0),  # unknown 0-59 s, RUNNING 59-60 s
        (T0 + 60 * S, 1.0, 0),  # RUNNING 60-61 s, DOWN after
    ]


def test_a_late_change_older_than_the_carried_state_is_superseded() -> None:
    kpis = MachineKpis("m1", MINUTE)
    run(kpis, [state(0, "RUNNING", "start"), state(70, "DOWN", "breakdown", "RUNNING")], until_s=120)
    out = run(kpis, [state(30, "RUNNING", "resumed", "STARVED")], until_s=180)
    assert [(r["run_time_s"], r["late_events"]) for r in out] == [(0.0, 1)]  # still DOWN


def test_same_millisecond_changes_follow_their_previous_links() -> None:
    a = state(30, "SETUP", "changeover", "RUNNING")
    b = state(30, "IDLE", "planned_break", "SETUP")
    for order in ([a, b], [b, a]):
        (w,) = run(MachineKpis("m1", MINUTE), [state(0, "RUNNING", "start"), *order], until_s=60)
        assert (w["planned_time_s"], w["run_time_s"]) == (30.0, 30.0)


def test_redelivered_event_is_counted_once() -> None:
    p = part(10)
    (w,) = run(MachineKpis("m1", MINUTE), [state(0, "RUNNING", "start"), p, p], until_s=60)
    assert (w["total_count"], w["late_events"]) == (1, 0)


def test_advance_closes_silent_machines_and_process_one_only_its_own() -> None:
    kpis = machines(MINUTE)
    run(kpis, [state(0, "RUNNING", "start", m="a"), state(0, "RUNNING", "start", m="b")])
    out = run(kpis, [part(200, m="a")])
    assert {r["scope_id"] for r in out} == {"a"} and len(out) == 3
    emits = kpis.advance(T0 + 180 * S)
    assert [(e.record["scope_id"], e.record["window_start"]) for e in emits] == [
        ("b", T0),
        ("b", T0 + 60 * S),
        ("b", T0 + 120 * S),
    ]


def test_a_new_machine_behind_the_watermark_starts_at_the_first_open_window() -> None:
    kpis = MachineKpis("m1", MINUTE)
    kpis.advance(T0 + 600 * S)
    assert run(kpis, [state(30, "DOWN", "breakdown")]) == []
    out = run(kpis, [], until_s=660)
    w = window(out, 600)
    assert len(out) == 1 and w["late_events"] == 1 and w["availability"] == 0.0


def test_bad_input_raises_kpi_error_and_a_bad_snapshot_a_snapshot_error() -> None:
    kpis = MachineKpis("m1")
    assert kpis.process_one("factory.telemetry", state(0, "RUNNING")[1]) == []  # not a KPI input
    bad = dict(state(0, "RUNNING")[1], event_time="yesterday")
    with pytest.raises(KpiError, match="event_time"):
        kpis.process_one("factory.state", bad)
    with pytest.raises(SnapshotError, match="format 99"):
        kpis.restore(b'{"format": 99}')
    with pytest.raises(SnapshotError, match="version 7"):
        kpis.restore(b'{"format": "machine-kpis", "version": 7}')
    with pytest.raises(SnapshotError, match="not JSON"):
        kpis.restore(b"not json")
    with pytest.raises(SnapshotError, match="damaged"):
        kpis.restore(b'{"format": "machine-kpis", "version": 1}')


def test_a_snapshot_from_before_the_versioned_format_names_is_read() -> None:
    """Before, KPI snapshots said ``{"format": 1, "kind": "machine-kpis"}``, with the same fields."""
    events = [state(0, "RUNNING", "start"), part(10), part(70)]
    original = MachineKpis("m1", MINUTE)
    run(original, events)
    doc = json.loads(original.snapshot())
    doc.update({"format": 1, "kind": "machine-kpis"})
    del doc["version"]
    restored = MachineKpis("m1", MINUTE)
    restored.restore(json.dumps(doc).encode())
    assert restored.snapshot() == original.snapshot()
    assert run(restored, [part(130)], until_s=200) == run(original, [part(130)], until_s=200)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_sizes_s": ()},
        {"window_sizes_s": (60, 60)},
        {"window_sizes_s": (0,)},
        {"allowed_lateness_s": -1.0},
    ],
)
def test_bad_config_is_a_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        KpiConfig(**kwargs)


def test_doctests() -> None:
    for module in (processors.kpi.config, processors.kpi.machine):
        assert doctest.testmod(module).failed == 0


# -- property: arrival order within lateness does not matter ---------------------------------------

STATES = [
    ("RUNNING", "resumed"),
    ("STARVED", "upstream_empty"),
    ("BLOCKED", "downstream_full"),
    ("DOWN", "breakdown"),
    ("DOWN", "jam"),
    ("DOWN", "maintenance"),
    ("SETUP", "changeover"),
    ("IDLE", "planned_break"),
    ("IDLE", "paused"),
]
LATENESS_S = 45

event_strategy = st.tuples(
    st.sampled_from(["m1", "m2"]),
    st.integers(0, 300_000),  # ms after T0: dense, so arrivals often cross window boundaries
    st.one_of(st.sampled_from(STATES), st.tuples(st.booleans(), st.sampled_from([20.0, 30.5, 45.25]))),
    st.integers(0, LATENESS_S * S - 1),  # arrival delay: within the allowed lateness
)


def _record(i: int, spec: tuple[str, int, Any, int]) -> tuple[str, Record]:
    machine, t, body, _delay = spec
    head = {
        "event_id": f"e{i}",
        "event_time": T0 + t,
        "source": "t",
        "correlation_id": "c",
        "line_id": "line-1",
    }
    if isinstance(body[0], str):
        return "factory.state", {
            **head,
            "machine_id": machine,
            "previous": None,
            "state": body[0],
            "reason": body[1],
        }
    good, ideal = body
    return "factory.production", {
        **head,
        "machine_id": machine,
        "part_id": f"p{i}",
        "cycle_time_s": ideal * 1.1,
        "ideal_cycle_time_s": ideal,
        "good": good,
        "scrap_reason": None,
    }


@settings(max_examples=150, deadline=None)
@given(st.lists(event_strategy, min_size=1, max_size=40))
def test_property_out_of_order_within_lateness_gives_in_order_figures(
    specs: list[tuple[str, int, Any, int]],
) -> None:
    config = KpiConfig(window_sizes_s=(60, 300), allowed_lateness_s=LATENESS_S)
    events = [_record(i, s) for i, s in enumerate(specs)]
    in_order = sorted(range(len(specs)), key=lambda i: specs[i][1])
    arrival = sorted(range(len(specs)), key=lambda i: specs[i][1] + specs[i][3])
    end = T0 + 2_000 * S

    def outputs(order: list[int]) -> list[Record]:
        kpis = machines(config)
        out = [r for i in order for r in (e.record for e in kpis.process_one(*events[i]))]
        out += [e.record for e in kpis.advance(end)]
        return sorted(out, key=lambda r: (r["scope_id"], r["window_size_s"], r["window_start"]))

    expected = outputs(in_order)
    assert outputs(arrival) == expected
    assert all(r["late_events"] == 0 for r in expected)
    for r in expected:
        assert 0.0 <= r["oee"] <= r["availability"] <= 1.0 and 0.0 <= r["performance"] <= 1.0


# -- snapshot / restore and the real simulator -----------------------------------------------------


def sim_events(hours: float, seed: int = 3) -> tuple[list[tuple[str, Record]], int, int]:
    sim = Simulator(load_factory(), seed=seed, start_time_ms=T0)
    end = T0 + round(hours * 3_600_000)
    mapper = EventMapper(seed)
    out = [mapper.map(e) for e in sim.run(end - 1) if not isinstance(e, TelemetryEvent)]
    return [(o.topic, o.record) for o in out], T0, end


def test_snapshot_restore_gives_identical_outputs() -> None:
    events, _start, end = sim_events(2.0)
    config = KpiConfig(window_sizes_s=(60, 3600), allowed_lateness_s=90)
    # A few out-of-order and too-late events make the snapshot carry pending late counts too.
    events[500], events[520] = events[520], events[500]
    half = len(events) // 2
    stale = dict(events[3][1], event_id="stale-redelivery-with-new-id")
    events.insert(half - 1, (events[3][0], stale))
    original = machines(config)
    run(original, events[:half])
    original.advance(int(events[half][1]["event_time"]) - 300 * S)
    restored = machines(config)
    restored.restore(original.snapshots())
    assert restored.snapshots() == original.snapshots()
    rest = events[half:]
    rest.insert(10, events[5])  # a redelivery of an old event: late for every window
    assert run(restored, rest, until_s=(end - T0) / S + 200) == run(
        original, rest, until_s=(end - T0) / S + 200
    )


def test_simulator_hours_count_every_part_with_plausible_oee() -> None:
    events, start, end = sim_events(4.0)
    produced = Counter(r["machine_id"] for topic, r in events if topic == "factory.production")
    good = Counter(r["machine_id"] for topic, r in events if topic == "factory.production" and r["good"])
    kpis = machines()  # 60 s and 3600 s windows, default lateness
    records = run(kpis, events, until_s=(end - start) / S + KpiConfig().allowed_lateness_s)
    hours = [r for r in records if r["window_size_s"] == 3600]
    assert len(hours) == 4 * len(produced)
    counted: Counter[str] = Counter()
    counted_good: Counter[str] = Counter()
    for r in hours:
        counted[r["scope_id"]] += r["total_count"]
        counted_good[r["scope_id"]] += r["good_count"]
    assert counted == produced and counted_good == good
    minutes: Counter[str] = Counter()
    for r in records:
        if r["window_size_s"] == 60:
            minutes[r["scope_id"]] += r["total_count"]
    assert minutes == produced
    for r in records:
        for name in ("availability", "performance", "quality", "oee", "scrap_rate"):
            assert 0.0 <= r[name] <= 1.0, (name, r)
        assert r["late_events"] == 0
    # The 10-minute break at 6900 s (and every 2 h) is planned: hour 2 loses 5 min, hour 3 the other 5.
    for r in hours:
        hour = (r["window_start"] - start) // 3_600_000
        assert r["planned_time_s"] == (3600.0 if hour == 0 else 3300.0)
    weld = [r for r in hours if r["scope_id"] == "weld-1"]  # the bottleneck: busy, near its ideal pace
    assert all(r["performance"] > 0.8 and r["availability"] > 0.8 and r["oee"] > 0.6 for r in weld)
    press_first = next(r for r in hours if r["scope_id"] == "press-1" and r["window_start"] == start)
    assert press_first["failures"] >= 1  # the scenario's jam at 3300 s
