"""The hybrid flow shop: stages of parallel machines sharing a queue, product families with
sequence-dependent setups, orders with due dates, plans, and the shipped job-shop layout."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim import (
    FactorySpec,
    FaultSpec,
    PartProducedEvent,
    PlanPolicy,
    Simulator,
    StartMaintenance,
    StateChangeEvent,
    factory_names,
    load_factory,
    parse_factory,
    policy_by_name,
)
from sim.shop import ProductMix
from tests.unit.sim.sim_trace import HOUR_MS, MINUTE_MS, T0, parts, run, states, telemetry
from twin.errors import ConfigError


def shop(*stations: dict[str, Any], **line: Any) -> FactorySpec:
    """One line ``S``; stations are dicts over cheap defaults (cnc, 10 s, no scrap, 1 h telemetry)."""
    specs = [
        {
            "id": f"m{i + 1}",
            "machine_type": "cnc",
            "ideal_cycle_time_s": 10,
            "telemetry_interval_s": 3600,
            **s,
        }
        for i, s in enumerate(stations)
    ]
    return parse_factory({"lines": [{"id": "S", "stations": specs, **line}]}, source="test")


def job_shop(**release: Any) -> FactorySpec:
    """The shipped job shop with hourly telemetry (the part flow does not depend on it)."""
    data = load_factory("job-shop").model_dump(mode="json")
    (line,) = data["lines"]
    for station in line["stations"]:
        station["telemetry_interval_s"] = 3600
    line["release"] = {**line["release"], **release}
    return parse_factory(data, source="test")


def produced(events: list[Any]) -> list[PartProducedEvent]:
    return [e for e in events if isinstance(e, PartProducedEvent)]


# -- the shipped layout -----------------------------------------------------------------------


def test_the_job_shop_loads_by_name_with_parallel_machines_families_and_setups() -> None:
    assert {"default", "job-shop"} <= set(factory_names())
    factory = load_factory("job-shop")
    (line,) = factory.lines
    stages = [(name, [line.stations[i].id for i in members]) for name, members in line.stages()]
    assert stages == [
        ("press", ["press-1"]),
        ("mill", ["mill-1", "mill-2"]),
        ("paint", ["paint-1", "paint-2"]),
    ]
    speeds = {s.id: s.ideal_cycle_time_s for s in line.stations}
    assert speeds["mill-1"] < speeds["mill-2"] and speeds["paint-1"] < speeds["paint-2"]
    assert [f.id for f in line.families] == ["bracket", "housing", "flange"]
    assert all(s.mtbf_s is not None for s in line.stations)
    mix = ProductMix(line)
    assert (
        min(mix.setup_s(k, a, b) for k in range(3) for a in mix.families for b in mix.families if a != b) > 0
    )
    assert line.release is not None and line.release.interarrival_s is not None
    assert line.buffer_capacity(2) == line.buffer_capacity(1) == 60  # mill-2 shares mill-1's queue


def test_edd_cuts_tardiness_and_spt_cuts_setups_against_fifo_on_the_job_shop() -> None:
    factory = job_shop()
    result: dict[str, tuple[float, int]] = {}
    for rule in ("fifo", "edd", "spt"):
        sim = Simulator(factory, seed=2, start_time_ms=T0, policies={"shop-1": policy_by_name(rule)})
        events = list(sim.run(T0 + 8 * HOUR_MS))
        line = sim.observe().line("shop-1")
        in_line = line.released - line.shipped - sum(m.scrap for m in line.machines)
        mean_tardiness_min = (line.tardiness_s + line.lateness_in_line_s) / 60 / (line.shipped + in_line)
        setups = sum(1 for e in events if isinstance(e, StateChangeEvent) and e.reason.startswith("setup:"))
        result[rule] = (mean_tardiness_min, setups)
    fifo, edd, spt = result["fifo"], result["edd"], result["spt"]
    assert fifo[0] > 10  # the due dates are tight: order matters
    assert edd[0] < fifo[0] / 4
    assert spt[1] < 0.8 * fifo[1]


# -- runs -----------------------------------------------------------------------------------------


def test_a_shop_run_is_reproducible_by_seed_and_its_parts_carry_family_and_due_date() -> None:
    factory = job_shop()
    _, first = run(factory, seed=5, duration_ms=2 * HOUR_MS)
    _, again = run(factory, seed=5, duration_ms=2 * HOUR_MS)
    _, other = run(factory, seed=6, duration_ms=2 * HOUR_MS)
    assert first == again and first != other
    made = produced(first)
    allowance_ms = {f.id: round((f.due_allowance_s or 0) * 1000) for f in factory.lines[0].families}
    assert {e.family for e in made} == set(allowance_ms)
    # The first 40 orders are the backlog released at the start: due one allowance later.
    backlog = [e for e in made if int(e.part_id.rsplit("-", 1)[1]) <= 40]
    assert backlog and all(e.family is not None and e.due_ms == T0 + allowance_ms[e.family] for e in backlog)
    # An order's nominal time follows its family and the machine.
    mill_1 = {e.family: e.ideal_cycle_time_s for e in parts(first, "mill-1")}
    assert mill_1 == {
        "bracket": pytest.approx(42.0),
        "housing": pytest.approx(105.0),
        "flange": pytest.approx(70.0),
    }


def test_every_order_is_accounted_for_and_visits_each_stage_once_in_order() -> None:
    factory = job_shop()
    data = factory.model_dump(mode="json")
    data["lines"][0]["prefill"] = 0.2  # warm start: the queues between stages hold orders too
    sim, events = run(parse_factory(data), seed=11, duration_ms=3 * HOUR_MS)
    line = sim.observe().line("shop-1")
    in_machines = sum(m.part_id is not None for m in line.machines)
    in_queues = sum(b.level for b in line.buffers)
    assert [b.buffer_id for b in line.buffers] == ["orders->press", "press->mill", "mill->paint"]
    assert line.released == line.shipped + sum(m.scrap for m in line.machines) + in_machines + in_queues
    assert all(0 <= b.level <= b.capacity for b in line.buffers)
    stage_of = {"press-1": 0, "mill-1": 1, "mill-2": 1, "paint-1": 2, "paint-2": 2}
    route: dict[str, list[int]] = defaultdict(list)
    for e in produced(events):
        route[e.part_id].append(stage_of[e.machine_id])
    prefilled = round(0.2 * 60) * 2
    fresh = [r for p, r in route.items() if int(p.rsplit("-", 1)[1]) > prefilled]
    assert fresh and all(r == [0, 1, 2][: len(r)] for r in fresh)
    assert sum(1 for r in fresh if r == [0, 1, 2]) > 100


# -- setups ---------------------------------------------------------------------------------------


def test_a_family_change_is_a_setup_of_the_listed_duration_and_the_first_part_needs_none() -> None:
    factory = shop(
        {"id": "m1"},
        families=[{"id": "A"}, {"id": "B", "processing_factor": {"m1": 2.0}}],
        setups=[{"times_s": {"A": {"B": 120}, "B": {"A": 30}}}],
        release={"initial_orders": 30},
    )
    _, events = run(factory, seed=3, duration_ms=HOUR_MS)
    made = parts(events, "m1")
    assert len(made) == 30
    changes = [(a.family, b.family) for a, b in pairwise(made) if a.family != b.family]
    assert changes  # FIFO on a random mix changes family often
    setups = [e for e in states(events, "m1") if e.state == "SETUP"]
    assert [e.reason for e in setups] == [f"setup:{a}->{b}" for a, b in changes]
    timeline = states(events, "m1")
    for e in setups:
        after = timeline[timeline.index(e) + 1]
        expected_s = 120 if e.reason == "setup:A->B" else 30
        assert after.time_ms - e.time_ms == expected_s * 1000
        assert (after.state, after.reason) == ("RUNNING", "setup_done")
    assert (timeline[0].state, timeline[0].reason) == ("RUNNING", "start")  # no setup for the first part
    assert {e.ideal_cycle_time_s for e in made} == {10.0, 20.0}


def test_setups_on_the_job_shop_take_the_setup_matrix_time_per_stage() -> None:
    factory = job_shop()
    mix = ProductMix(factory.lines[0])
    stage_index = {"press-1": 0, "mill-1": 1, "mill-2": 1, "paint-1": 2, "paint-2": 2}
    _, events = run(factory, seed=4, duration_ms=4 * HOUR_MS)
    checked = 0
    for machine, k in stage_index.items():
        timeline = states(events, machine)
        for e, after in pairwise(timeline):
            if e.state == "SETUP":
                origin, target = e.reason.removeprefix("setup:").split("->")
                assert after.time_ms - e.time_ms == round(mix.setup_s(k, origin, target) * 1000)
                checked += 1
    assert checked > 100


# -- parallel machines --------------------------------------------------------------------------


def test_parallel_machines_share_the_queue_in_front_of_their_stage() -> None:
    factory = shop(
        {"id": "a", "ideal_cycle_time_s": 5, "cycle_time_cv": 0},
        {"id": "b1", "stage": "b", "ideal_cycle_time_s": 20, "input_buffer": 4, "cycle_time_cv": 0},
        {"id": "b2", "stage": "b", "ideal_cycle_time_s": 30, "cycle_time_cv": 0},
    )
    sim = Simulator(factory, seed=1, start_time_ms=T0)
    (queue,) = sim.observe().line("S").buffers
    assert (queue.buffer_id, queue.upstream_id, queue.downstream_id, queue.capacity) == ("a->b", "a", "b", 4)
    events = sim.step(3600)
    b1, b2 = parts(events, "b1"), parts(events, "b2")
    # Each machine works at its own speed from the one queue: together faster than either alone.
    assert abs(len(b1) - 180) <= 2 and abs(len(b2) - 120) <= 2
    assert not {e.part_id for e in b1} & {e.part_id for e in b2}
    assert {e.part_id for e in b1 + b2} == {e.part_id for e in parts(events, "a")[: len(b1) + len(b2)]}
    sim.act(StartMaintenance("b1", 600))
    during = sim.step(600)
    assert parts(during, "b1") == [] and len(parts(during, "b2")) >= 19
    assert sim.observe().machine("b2").stage == "b"


def test_a_blocked_stage_hands_on_its_parts_oldest_first() -> None:
    factory = shop(
        {"id": "a1", "stage": "a", "ideal_cycle_time_s": 10, "cycle_time_cv": 0},
        {"id": "a2", "stage": "a", "ideal_cycle_time_s": 12, "cycle_time_cv": 0},
        {"id": "z", "ideal_cycle_time_s": 60, "input_buffer": 1, "cycle_time_cv": 0},
    )
    _, events = run(factory, seed=1, duration_ms=HOUR_MS)
    # z is the bottleneck: both a-machines end up blocked, and z's queue takes whichever part has
    # waited longest, so both keep their share of the work.
    blocked = {m: sum(1 for e in states(events, m) if e.state == "BLOCKED") for m in ("a1", "a2")}
    assert min(blocked.values()) > 10
    taken = [e.part_id for e in parts(events, "z")]
    by_machine = {e.part_id: e.machine_id for e in parts(events, "a1") + parts(events, "a2")}
    share = sum(by_machine[p] == "a2" for p in taken) / len(taken)
    assert 0.35 < share < 0.65


# -- plans ----------------------------------------------------------------------------------------


def test_machines_follow_the_plans_sequences() -> None:
    factory = shop(
        {"id": "p", "ideal_cycle_time_s": 10, "cycle_time_cv": 0.1},
        {"id": "q1", "stage": "q", "ideal_cycle_time_s": 25, "input_buffer": 20},
        {"id": "q2", "stage": "q", "ideal_cycle_time_s": 25},
        release={"initial_orders": 16},
    )
    ids = [f"S-{i:08d}" for i in range(1, 17)]
    at_p = [*reversed(ids[8:]), *ids[:8]]
    plan = {"p": at_p, "q1": at_p[0::2], "q2": at_p[1::2]}
    sim = Simulator(factory, seed=2, start_time_ms=T0, policies={"S": PlanPolicy(plan, plan_id="plan-1")})
    events = list(sim.run(T0 + HOUR_MS))
    for machine, sequence in plan.items():
        assert [e.part_id for e in parts(events, machine)] == sequence
    _, fifo = run(factory, seed=2, duration_ms=HOUR_MS)
    assert [e.part_id for e in parts(fifo, "p")] == ids
    assert sim.observe().line("S").plan_id == "plan-1"


# -- ordinary machines ----------------------------------------------------------------------------


def test_shop_machines_break_down_report_telemetry_and_take_faults() -> None:
    factory = load_factory("job-shop")
    sim = Simulator(factory, seed=1, start_time_ms=T0)
    sim.inject(FaultSpec(machine="mill-1", kind="jam", start_s=1800, duration_s=900))
    events = list(sim.run(T0 + HOUR_MS))
    for station in factory.lines[0].stations:
        assert len(telemetry(events, station.id)) == 3600
    assert [(e.state, e.reason) for e in states(events, "mill-1") if e.time_ms == T0 + 1_800_000] == [
        ("DOWN", "jam")
    ]
    # While mill-1 is jammed, mill-2 takes the orders from the mill queue.
    during = [e for e in parts(events, "mill-2") if T0 + 1_800_000 <= e.time_ms < T0 + 2_700_000]
    assert len(during) >= 6
    _, day = run(job_shop(), seed=1, duration_ms=24 * HOUR_MS)
    broken = {e.machine_id for e in day if isinstance(e, StateChangeEvent) and e.reason == "breakdown"}
    assert broken >= {"press-1", "mill-1", "mill-2"}


def test_orders_beyond_the_backlog_are_turned_away_and_counted() -> None:
    factory = shop({"ideal_cycle_time_s": 60}, release={"interarrival_s": 10, "backlog": 3})
    sim, _ = run(factory, seed=1, duration_ms=10 * MINUTE_MS)
    line = sim.observe().line("S")
    assert line.buffers[0].buffer_id == "orders->m1" and line.buffers[0].level == 3
    assert line.refused > 30 and line.released == line.shipped + 1 + 3


def test_an_order_stream_stops_at_max_orders_and_dates_orders_without_families() -> None:
    factory = shop(
        {"ideal_cycle_time_s": 5},
        release={"initial_orders": 2, "interarrival_s": 20, "max_orders": 12, "due_allowance_s": 600},
    )
    sim, events = run(factory, seed=1, duration_ms=HOUR_MS)
    assert sim.observe().line("S").released == 12
    made = parts(events, "m1")
    assert len(made) == 12 and all(e.family is None for e in made)
    assert made[0].due_ms == made[1].due_ms == T0 + 600_000
    assert all(e.due_ms is not None and e.due_ms > T0 + 600_000 for e in made[2:])


# -- layout errors --------------------------------------------------------------------------------


def line_of(*stages: str | None, buffers: tuple[int | None, ...] = (), **line: Any) -> dict[str, Any]:
    """A layout of cnc stations ``a``, ``b``, ... with these ``stage`` and ``input_buffer`` fields."""
    stations = []
    for i, stage in enumerate(stages):
        station: dict[str, Any] = {"id": "abcdef"[i], "machine_type": "cnc", "ideal_cycle_time_s": 10}
        if stage is not None:
            station["stage"] = stage
        if i < len(buffers) and buffers[i] is not None:
            station["input_buffer"] = buffers[i]
        stations.append(station)
    return {"lines": [{"id": "l", "stations": stations, **line}]}


def two_stage(**line: Any) -> dict[str, Any]:
    return line_of("s", "s", None, **line)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (line_of("s", None, "s"), "stations[2].stage: the stations of stage 's' must be consecutive"),
        (
            line_of(None, "t", "t", buffers=(None, 3, 3)),
            "stations[2].input_buffer: stage 't' shares one queue; set its capacity on its first station (b)",
        ),
        (line_of("b", None), "stations[0].stage: 'b' is the id of another station"),
        (
            two_stage(families=[{"id": "A", "processing_factor": {"x": 2}}]),
            "families[0].processing_factor: unknown stage 'x' (known: s, c)",
        ),
        (two_stage(families=[{"id": "A"}, {"id": "A"}]), "families: duplicate family id(s) A"),
        (
            two_stage(families=[{"id": "A"}], setups=[{"times_s": {"A": {"B": 5}}}]),
            "setups[0].times_s: unknown family 'B' (known: A)",
        ),
        (two_stage(setups=[{"times_s": {}}]), "setups: setups change between families; declare families"),
        (
            two_stage(families=[{"id": "A"}], setups=[{"stage": "s"}, {"stage": "s"}]),
            "setups[1]: a second setup entry for stage 's'",
        ),
        (
            two_stage(dispatch="lifo"),
            "lines[0].dispatch: unknown dispatch rule 'lifo' (known: fifo, spt, edd, mwkr)",
        ),
        (
            two_stage(release={"backlog": 5}),
            "lines[0].release: a release needs initial_orders or interarrival_s",
        ),
        (two_stage(families=[{"id": "A", "share": 0}]), "families[0].share: Input should be greater than 0"),
        (
            two_stage(release={"initial_orders": 5, "max_orders": 4}),
            "lines[0].release: max_orders (4) is fewer than initial_orders (5)",
        ),
    ],
)
def test_a_bad_shop_layout_names_the_field(tmp_path: Path, data: dict[str, Any], expected: str) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_factory(path)
    assert expected in str(info.value)
