"""act(): what a dispatcher or RL agent can do, and observe(): what it sees."""

from __future__ import annotations

import pytest

from sim import (
    FaultKind,
    FaultSpec,
    Pause,
    Resume,
    SimEvent,
    Simulator,
    StartMaintenance,
    StateChangeEvent,
)
from tests.unit.sim.sim_trace import MINUTE_MS, T0, layout, parts, state_at, states
from twin.errors import SimulationError


def line_sim() -> Simulator:
    factory = layout(
        {"ideal_cycle_time_s": 20, "cycle_time_cv": 0},
        {"ideal_cycle_time_s": 20, "cycle_time_cv": 0, "input_buffer": 2},
        {"ideal_cycle_time_s": 20, "cycle_time_cv": 0, "input_buffer": 2},
    )
    return Simulator(factory, seed=1, start_time_ms=T0)


def test_pause_stops_a_machine_mid_cycle_and_resume_continues_it() -> None:
    sim = line_sim()
    events: list[SimEvent] = list(sim.run(T0 + 5 * MINUTE_MS + 5_000))
    before = sim.observe().machine("m2")
    assert before.state == "RUNNING" and 0 < before.cycle_progress < 1
    sim.act(Pause("m2"))
    sim.act(Pause("m2"))  # pausing twice is the same as once
    events += sim.step(10 * 60)
    paused = sim.observe()
    assert paused.machine("m2").cycle_progress == before.cycle_progress
    assert paused.machine("m2").part_id == before.part_id
    assert paused.machine("m1").state == "BLOCKED" and paused.machine("m3").state == "STARVED"
    assert [e for e in parts(events, "m2") if e.time_ms > T0 + 5 * MINUTE_MS + 5_000] == []
    sim.act(Resume("m2"))
    events += sim.step(60)
    idle = [e for e in states(events, "m2") if e.state == "IDLE"]
    assert len(idle) == 1 and idle[0].reason == "paused" and idle[0].time_ms == T0 + 5 * MINUTE_MS + 5_000
    resumed = next(e for e in states(events, "m2") if e.previous == "IDLE")
    assert resumed.reason == "resumed" and resumed.state == "RUNNING"
    # The interrupted part finishes after the rest of its cycle, not a whole new one.
    remaining_ms = round((1 - before.cycle_progress) * 20_000)
    finished = next(e for e in parts(events, "m2") if e.time_ms > resumed.time_ms)
    assert finished.part_id == before.part_id
    assert finished.time_ms - resumed.time_ms == pytest.approx(remaining_ms, abs=1)
    assert finished.cycle_time_s == 20.0


def test_resume_without_pause_does_nothing() -> None:
    sim = line_sim()
    sim.step(60)
    sim.act(Resume("m1"))
    assert sim.step(0) == []


def test_state_changes_caused_by_an_action_come_out_of_the_next_step() -> None:
    sim = line_sim()
    sim.step(30)
    sim.act(Pause("m1"))
    out = sim.step(0)
    assert out == [StateChangeEvent(T0 + 30_000, "L", "m1", "RUNNING", "IDLE", "paused")]


def test_maintenance_takes_the_machine_down_for_its_duration() -> None:
    sim = line_sim()
    events = list(sim.run(T0 + 2 * MINUTE_MS))
    sim.act(StartMaintenance("m3", 90))
    assert sim.observe().machine("m3").state == "DOWN"
    events += list(sim.run(T0 + 10 * MINUTE_MS))
    down = [e for e in states(events, "m3") if e.state == "DOWN"]
    assert [(e.time_ms, e.reason) for e in down] == [(T0 + 2 * MINUTE_MS, "maintenance")]
    up = next(e for e in states(events, "m3") if e.previous == "DOWN")
    assert up.time_ms == T0 + 2 * MINUTE_MS + 90_000 and up.reason == "maintenance_done"
    assert state_at(events, "m3", T0 + 2 * MINUTE_MS + 89_999) == "DOWN"


def test_actions_reject_what_they_cannot_do() -> None:
    sim = line_sim()
    with pytest.raises(SimulationError, match="unknown machine 'm9'"):
        sim.act(Pause("m9"))
    with pytest.raises(SimulationError, match="duration_s"):
        sim.act(StartMaintenance("m1", 0))
    with pytest.raises(SimulationError, match="unknown action"):
        sim.act("pause m1")  # type: ignore[arg-type]


def test_observe_reports_machines_buffers_and_time() -> None:
    sim = line_sim()
    sim.step(600)
    obs = sim.observe()
    assert obs.time_ms == T0 + 600_000 == sim.now_ms
    line = obs.line("L")
    assert [m.machine_id for m in line.machines] == ["m1", "m2", "m3"]
    assert [(b.buffer_id, b.capacity) for b in line.buffers] == [("m1->m2", 2), ("m2->m3", 2)]
    m3 = line.machine("m3")
    assert m3.parts_done == m3.good + m3.scrap == line.shipped > 20
    assert all(m.machine_type == "cnc" and m.state and m.reason for m in line.machines)
    with pytest.raises(KeyError):
        obs.line("nope")


def test_maintenance_clears_a_jam_and_overlapping_stops_resolve_in_order() -> None:
    sim = line_sim()
    sim.step(60)
    sim.inject(FaultSpec(machine="m2", kind=FaultKind.JAM, duration_s=600))
    sim.step(60)
    sim.act(Pause("m2"))
    sim.act(StartMaintenance("m2", 120))
    assert sim.faults[0].end_ms == T0 + 120_000  # the jam ends when maintenance starts
    assert sim.observe().machine("m2").reason == "maintenance"
    events = sim.step(300)
    changes = [(e.time_ms - T0, e.previous, e.state, e.reason) for e in states(events, "m2")]
    # DOWN outranks the pause; once maintenance is done the machine is IDLE (still paused), not RUNNING.
    assert changes == [(240_000, "DOWN", "IDLE", "paused")]
    sim.act(Resume("m2"))
    assert [e.state for e in states(sim.step(1), "m2")] == ["RUNNING"]
