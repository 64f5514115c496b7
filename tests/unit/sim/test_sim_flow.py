"""Part flow: starvation and blocking, conservation, scrap, planned stops, breakdowns, several lines."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from sim import PartProducedEvent, Simulator, parse_factory
from tests.unit.sim.sim_trace import (
    HOUR_MS,
    MINUTE_MS,
    T0,
    layout,
    parts,
    run,
    state_at,
    states,
    telemetry,
    time_in_state,
)


def test_a_slow_middle_station_blocks_upstream_and_starves_downstream() -> None:
    factory = layout(
        {"ideal_cycle_time_s": 10},
        {"ideal_cycle_time_s": 30, "input_buffer": 2},
        {"ideal_cycle_time_s": 5, "input_buffer": 2},
    )
    _, events = run(factory, seed=1, duration_ms=HOUR_MS)
    end = T0 + HOUR_MS
    upstream, bottleneck, downstream = (time_in_state(events, m, end) for m in ("m1", "m2", "m3"))
    assert upstream.get("BLOCKED", 0) > 0.5 * HOUR_MS
    assert downstream.get("STARVED", 0) > 0.6 * HOUR_MS
    assert bottleneck.get("RUNNING", 0) > 0.95 * HOUR_MS
    reasons = {(e.state, e.reason) for e in states(events, "m1") + states(events, "m3") if e.previous}
    assert ("BLOCKED", "downstream_full") in reasons and ("STARVED", "upstream_empty") in reasons
    # The line runs at the bottleneck's pace.
    shipped = [e for e in parts(events, "m3") if e.good]
    assert abs(len(shipped) - HOUR_MS / 30_000 / 1.04) < 6


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    stations=st.lists(
        st.fixed_dictionaries(
            {
                "ideal_cycle_time_s": st.floats(1, 60),
                "cycle_time_cv": st.floats(0, 0.5),
                "scrap_probability": st.floats(0, 0.3),
                "input_buffer": st.integers(1, 6),
                "mtbf_s": st.none() | st.floats(300, 3600),
                "mttr_s": st.floats(10, 600),
            }
        ),
        min_size=1,
        max_size=4,
    ),
    prefill=st.floats(0, 1),
    minutes=st.integers(1, 90),
)
def test_every_released_part_is_accounted_for(
    seed: int, stations: list[dict[str, object]], prefill: float, minutes: int
) -> None:
    stations[0].pop("input_buffer")
    factory = layout(*stations, line={"prefill": prefill})
    sim, events = run(factory, seed=seed, duration_ms=minutes * MINUTE_MS)
    line = sim.observe().line("L")
    in_machines = sum(m.part_id is not None for m in line.machines)
    in_buffers = sum(b.level for b in line.buffers)
    scrapped = sum(m.scrap for m in line.machines)
    assert line.released == line.shipped + scrapped + in_machines + in_buffers
    assert all(0 <= b.level <= b.capacity for b in line.buffers)
    # Each part visits the stations in order, once each, and a scrapped part goes no further.
    route: dict[str, list[PartProducedEvent]] = defaultdict(list)
    for e in events:
        if isinstance(e, PartProducedEvent):
            route[e.part_id].append(e)
    order = [s.id for s in factory.lines[0].stations]
    for visits in route.values():
        ids = [v.machine_id for v in visits]
        assert ids == order[order.index(ids[0]) : order.index(ids[0]) + len(ids)]
        assert all(v.good for v in visits[:-1])
    observed_good = {m.machine_id: m.good for m in line.machines}
    for machine_id, good in observed_good.items():
        assert good == sum(e.good for e in parts(events, machine_id))


def test_scrap_rate_matches_the_configured_probability() -> None:
    factory = layout({"ideal_cycle_time_s": 1, "cycle_time_cv": 0, "scrap_probability": 0.1})
    _, events = run(factory, seed=3, duration_ms=HOUR_MS)
    done = parts(events, "m1")
    assert len(done) == 3600
    rate = sum(not e.good for e in done) / len(done)
    assert abs(rate - 0.1) < 0.02  # 4 standard errors
    assert {e.scrap_reason for e in done if not e.good} == {"dimension_out_of_tolerance"}


def test_cycle_times_scatter_above_the_ideal() -> None:
    factory = layout({"ideal_cycle_time_s": 20, "cycle_time_cv": 0.1})
    _, events = run(factory, seed=4, duration_ms=HOUR_MS)
    cycles = [e.cycle_time_s for e in parts(events, "m1")]
    assert min(cycles) >= 20 and len(set(cycles)) > 100
    assert 21 < sum(cycles) / len(cycles) < 22.5  # ideal * (1 + cv * E|z|), E|z| = 0.8


def test_changeover_every_n_parts_is_a_setup() -> None:
    factory = layout({"changeover": {"every_parts": 5, "duration_s": 30}})
    _, events = run(factory, seed=5, duration_ms=30 * MINUTE_MS)
    setups = [e for e in states(events, "m1") if e.state == "SETUP" and e.time_ms < T0 + 29 * MINUTE_MS]
    assert len(setups) >= 5 and all(e.reason == "changeover" for e in setups)
    for setup in setups:
        before = [e for e in parts(events, "m1") if e.time_ms <= setup.time_ms]
        assert len(before) % 5 == 0
        after = next(e for e in states(events, "m1") if e.time_ms > setup.time_ms)
        assert after.previous == "SETUP" and after.time_ms - setup.time_ms == 30_000
        assert after.reason == "changeover_done"


def test_a_planned_break_idles_the_whole_line() -> None:
    factory = layout({}, {}, line={"breaks": [{"start_s": 600, "duration_s": 300, "every_s": 1800}]})
    _, events = run(factory, seed=6, duration_ms=HOUR_MS)
    for machine_id in ("m1", "m2"):
        idle = [e for e in states(events, machine_id) if e.state == "IDLE"]
        assert [e.time_ms - T0 for e in idle] == [600_000, 2_400_000]
        assert all(e.reason == "planned_break" for e in idle)
        assert state_at(events, machine_id, T0 + 899_999) == "IDLE"
        assert state_at(events, machine_id, T0 + 900_000) != "IDLE"
        made = [e for e in parts(events, machine_id) if T0 + 600_000 < e.time_ms < T0 + 900_000]
        assert made == []


def test_random_breakdowns_take_machines_down_and_back() -> None:
    factory = layout({"ideal_cycle_time_s": 5, "mtbf_s": 600, "mttr_s": 60})
    _, events = run(factory, seed=7, duration_ms=4 * HOUR_MS)
    downs = [e for e in states(events, "m1") if e.state == "DOWN"]
    assert all(e.reason == "breakdown" for e in downs)
    spent = time_in_state(events, "m1", T0 + 4 * HOUR_MS)
    # Breakdowns come every mtbf_s of running time on average (4 h ~ 22 of them)...
    assert 10 <= len(downs) <= 40
    # ...and repairs last mttr_s on average.
    assert 30_000 < spent["DOWN"] / len(downs) < 100_000
    back = [e for e in states(events, "m1") if e.previous == "DOWN"]
    assert back and all(e.reason == "repaired" for e in back)


def test_a_factory_runs_several_independent_lines() -> None:
    station = {"machine_type": "press", "ideal_cycle_time_s": 12, "telemetry_interval_s": 10}
    factory = parse_factory(
        {
            "lines": [
                {
                    "id": "a",
                    "stations": [{**station, "id": "a1"}, {**station, "id": "a2", "input_buffer": 2}],
                },
                {"id": "b", "stations": [{**station, "id": "b1", "telemetry_interval_s": 2}]},
            ]
        }
    )
    sim = Simulator(factory, seed=8, start_time_ms=T0)
    events = list(sim.run(T0 + 10 * MINUTE_MS))
    obs = sim.observe()
    assert [line.line_id for line in obs.lines] == ["a", "b"]
    assert obs.line("a").shipped > 0 and obs.line("b").shipped > 0
    made = {e.part_id.rsplit("-", 1)[0] for e in events if isinstance(e, PartProducedEvent)}
    assert made == {"a", "b"}
    assert len(telemetry(events, "a1")) == 60 and len(telemetry(events, "b1")) == 300


def test_parts_move_through_the_line_in_serial_order() -> None:
    factory = layout({}, {}, {"input_buffer": 4}, line={"prefill": 1.0})
    sim, events = run(factory, seed=9, duration_ms=HOUR_MS)
    for machine_id in ("m1", "m2", "m3"):
        serials = [int(e.part_id.rsplit("-", 1)[1]) for e in parts(events, machine_id)]
        assert serials == sorted(serials) and len(serials) > 100
    assert [int(e.part_id.rsplit("-", 1)[1]) for e in parts(events, "m3")][:3] == [1, 2, 3]
    assert sim.observe().line("L").released > 7
