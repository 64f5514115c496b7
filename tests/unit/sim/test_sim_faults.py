"""Fault injection: each kind leaves its signature in the stream and is recorded as ground truth."""

from __future__ import annotations

import itertools
import json

import pytest

from sim import (
    FactorySpec,
    FaultKind,
    FaultRecord,
    FaultSpec,
    ScenarioSpec,
    SimEvent,
    Simulator,
    StartMaintenance,
    load_factory,
)
from tests.unit.sim.sim_trace import HOUR_MS, MINUTE_MS, T0, channel, layout, mean, parts, run, states, values
from twin.errors import SimulationError

SEED = 11
TWO_HOURS = 2 * HOUR_MS


def at(seconds: float) -> int:
    return T0 + round(seconds * 1000)


@pytest.fixture(scope="module")
def factory() -> FactorySpec:
    return load_factory()


@pytest.fixture(scope="module")
def faulty(factory: FactorySpec) -> tuple[Simulator, list[SimEvent]]:
    return run(factory, SEED, TWO_HOURS)


@pytest.fixture(scope="module")
def clean(factory: FactorySpec) -> list[SimEvent]:
    """The same seed with no scenario: the counterfactual."""
    return run(factory.model_copy(update={"scenario": ScenarioSpec()}), SEED, TWO_HOURS)[1]


def test_the_default_scenario_is_one_of_each_kind_apart_in_two_hours(
    faulty: tuple[Simulator, list[SimEvent]],
) -> None:
    records = faulty[0].faults
    assert sorted(r.kind for r in records) == sorted(k.value for k in FaultKind)
    assert all(r.source == "scenario" and r.line_id == "line-1" for r in records)
    windows = sorted((r.start_ms, r.end_ms or 0) for r in records)
    assert windows[0][0] >= at(600) and windows[-1][1] <= at(7200)
    assert all(nxt[0] - prev[1] >= 5 * MINUTE_MS for prev, nxt in itertools.pairwise(windows))
    rows = faulty[0].fault_rows()
    assert json.loads(json.dumps(rows)) == rows
    assert rows[0] == {
        "machine_id": "cnc-1",
        "line_id": "line-1",
        "kind": "bearing_wear",
        "start_ms": at(600),
        "end_ms": at(1500),
        "severity": 0.8,
        "channel": None,
        "source": "scenario",
        "failed": False,
    }


def test_a_fault_changes_nothing_before_it_starts(
    faulty: tuple[Simulator, list[SimEvent]], clean: list[SimEvent]
) -> None:
    first = min(r.start_ms for r in faulty[0].faults)
    assert [e for e in faulty[1] if e.time_ms < first] == [e for e in clean if e.time_ms < first]


def test_bearing_wear_drives_vibration_up_over_time(
    faulty: tuple[Simulator, list[SimEvent]], clean: list[SimEvent]
) -> None:
    vib, base = channel(faulty[1], "cnc-1", "vibration_rms"), channel(clean, "cnc-1", "vibration_rms")
    early = mean(values(vib, at(600), at(900))) / mean(values(base, at(600), at(900)))
    late = mean(values(vib, at(1200), at(1500))) / mean(values(base, at(1200), at(1500)))
    assert 1.1 < early < late and late > 2.0
    after = mean(values(vib, at(1560), at(2000))) / mean(values(base, at(1560), at(2000)))
    assert after == pytest.approx(1.0, abs=0.15)


def test_overheating_raises_temperature_with_thermal_lag(
    faulty: tuple[Simulator, list[SimEvent]], clean: list[SimEvent]
) -> None:
    temp, base = channel(faulty[1], "weld-1", "temperature"), channel(clean, "weld-1", "temperature")
    first_minute = mean(values(temp, at(2100), at(2160))) - mean(values(base, at(2100), at(2160)))
    last_minutes = mean(values(temp, at(2500), at(2700))) - mean(values(base, at(2500), at(2700)))
    assert first_minute < 8 and last_minutes > 15
    later = mean(values(temp, at(3200), at(3300))) - mean(values(base, at(3200), at(3300)))
    assert abs(later) < 3


def test_a_jam_takes_the_machine_down_for_its_duration(faulty: tuple[Simulator, list[SimEvent]]) -> None:
    changes = states(faulty[1], "press-1")
    down = next(e for e in changes if e.state == "DOWN" and e.reason == "jam")
    assert down.time_ms == at(3300)
    back = next(e for e in changes if e.time_ms > down.time_ms)
    assert back.previous == "DOWN" and back.time_ms == at(3600)
    assert [e for e in parts(faulty[1], "press-1") if at(3300) < e.time_ms <= at(3600)] == []
    power = values(channel(faulty[1], "press-1", "power"), at(3310), at(3600))
    assert max(power) < 2.0


def test_a_stuck_sensor_repeats_its_last_value_exactly(faulty: tuple[Simulator, list[SimEvent]]) -> None:
    series = channel(faulty[1], "paint-1", "booth_temperature")
    stuck = values(series, at(4200), at(4800))
    last_before = values(series, at(4199), at(4200))
    assert len(stuck) == 600 and set(stuck) == set(last_before)
    assert len(set(values(series, at(4800), at(4900)))) > 10
    assert len(set(values(channel(faulty[1], "paint-1", "humidity"), at(4200), at(4800)))) > 10


def test_a_dropped_sensor_delivers_none(faulty: tuple[Simulator, list[SimEvent]]) -> None:
    series = channel(faulty[1], "qc-1", "camera_temperature")
    missing = [t for t, v in series if v is None]
    assert missing[0] == at(6300) and missing[-1] == at(6599)
    assert len(missing) == 300  # one per second while the fault is active, [start, end)


def test_tool_wear_lengthens_cycles_and_raises_spindle_load(
    faulty: tuple[Simulator, list[SimEvent]], clean: list[SimEvent]
) -> None:
    def cycles(events: list[SimEvent], start: float, end: float) -> list[float]:
        return [e.cycle_time_s for e in parts(events, "cnc-1") if at(start) <= e.time_ms < at(end)]

    worn, base = mean(cycles(faulty[1], 5700, 6000)), mean(cycles(clean, 5700, 6000))
    assert worn > 1.1 * base
    assert mean(cycles(faulty[1], 5400, 5600)) < worn
    load = mean(values(channel(faulty[1], "cnc-1", "spindle_load"), at(5700), at(6000)))
    normal = mean(values(channel(faulty[1], "cnc-1", "spindle_load"), at(4500), at(5300)))
    assert load > 1.2 * normal


def test_maintenance_repairs_an_open_ended_fault_and_ends_its_record() -> None:
    factory = layout({"machine_type": "cnc", "telemetry_interval_s": 1})
    sim = Simulator(factory, seed=2, start_time_ms=T0)
    sim.inject(FaultSpec(machine="m1", kind=FaultKind.BEARING_WEAR, start_s=60, severity=1.0))
    events = list(sim.run(at(1800)))
    assert sim.faults == (FaultRecord("m1", "L", "bearing_wear", at(60), None, 1.0, None, "injected"),)
    sim.act(StartMaintenance("m1", 300))
    assert sim.faults[0].end_ms == at(1800) and not sim.faults[0].active_at(at(1800))
    events += list(sim.run(at(3000)))
    vib = channel(events, "m1", "vibration_rms")
    worn, repaired, healthy = (
        mean(values(vib, at(a), at(b))) for a, b in ((1500, 1800), (2200, 3000), (0, 60))
    )
    assert worn > 3 * healthy
    assert repaired == pytest.approx(healthy, rel=0.15)


def test_inject_starts_now_when_its_time_has_passed_and_validates() -> None:
    factory = layout({"machine_type": "welder", "telemetry_interval_s": 1})
    sim = Simulator(factory, seed=3, start_time_ms=T0)
    sim.step(100)
    sim.inject(FaultSpec(machine="m1", kind=FaultKind.JAM, duration_s=30))
    assert sim.faults[0].start_ms == at(100) and sim.faults[0].end_ms == at(130)
    assert sim.observe().machine("m1").state == "DOWN"
    sim.inject(FaultSpec(machine="m1", kind=FaultKind.STUCK_SENSOR, start_s=500, duration_s=10))
    assert len(sim.fault_rows()) == 1  # not started yet
    sim.step(500)
    assert sim.faults[1].channel in {"weld_current", "wire_feed_rate", "arc_voltage", "temperature", "power"}
    with pytest.raises(SimulationError, match="unknown machine 'nope'"):
        sim.inject(FaultSpec(machine="nope", kind=FaultKind.JAM))
    with pytest.raises(SimulationError, match="vibration"):
        sim.inject(FaultSpec(machine="m1", kind=FaultKind.BEARING_WEAR))
    with pytest.raises(SimulationError, match="channel 'spindle_speed' does not exist"):
        sim.inject(FaultSpec(machine="m1", kind=FaultKind.DROPPED_SENSOR, channel="spindle_speed"))


def test_random_faults_follow_their_rates_and_are_recorded() -> None:
    factory = layout(
        {"machine_type": "cnc", "telemetry_interval_s": 60},
        {"machine_type": "paint", "telemetry_interval_s": 60},
        random_faults={"rates_per_hour": {"jam": 2.0, "bearing_wear": 1.0}, "mean_duration_s": {"jam": 60}},
    )
    sim, events = run(factory, seed=4, duration_ms=20 * HOUR_MS)
    jams = [r for r in sim.faults if r.kind == "jam"]
    wear = [r for r in sim.faults if r.kind == "bearing_wear"]
    assert 50 < len(jams) < 110  # 2 machines x 2/h x 20 h
    assert 8 < len(wear) < 35 and {r.machine_id for r in wear} == {"m1"}  # paint has no vibration channel
    assert all(r.source == "random" and 30_000 <= (r.end_ms or 0) - r.start_ms <= 90_000 for r in jams)
    jam_downs = [e for e in events if e.machine_id == "m2" and getattr(e, "reason", "") == "jam"]
    assert len(jam_downs) >= 0.8 * sum(r.machine_id == "m2" for r in jams)  # overlapping jams merge
    assert sim.faults == run(factory, seed=4, duration_ms=20 * HOUR_MS)[0].faults


def test_the_scenario_repeats_when_asked() -> None:
    factory = layout(
        {"machine_type": "press"},
        scenario={
            "repeat_every_s": 600,
            "faults": [{"machine": "m1", "kind": "jam", "start_s": 60, "duration_s": 30}],
        },
    )
    sim, _ = run(factory, seed=5, duration_ms=HOUR_MS)
    assert [r.start_ms - T0 for r in sim.faults] == [60_000 + k * 600_000 for k in range(6)]


def _down_reasons(sim: Simulator, until_s: float, machine: str) -> list[tuple[int, str, str]]:
    from sim.events import StateChangeEvent

    return [
        (e.time_ms, e.state, e.reason)
        for e in sim.run(until_ms=sim.start_time_ms + round(until_s * 1000))
        if isinstance(e, StateChangeEvent)
        and e.machine_id == machine
        and (e.state == "DOWN" or e.reason == "repaired")
    ]


def test_a_wear_fault_that_fails_takes_the_machine_down_at_its_end_until_repaired() -> None:
    sim = Simulator(load_factory(), seed=3, start_time_ms=T0)
    sim.inject(
        FaultSpec(machine="weld-1", kind="tool_wear", start_s=60, duration_s=3000, fails=True, repair_s=900)
    )
    downs = [d for d in _down_reasons(sim, 5000, "weld-1") if d[2] in ("failure", "repaired")]
    assert downs[:2] == [(at(3060), "DOWN", "failure"), (at(3960), "RUNNING", "repaired")]
    (record,) = [r for r in sim.faults if r.source == "injected"]
    assert record.failed and record.end_ms == at(3060)


def test_maintenance_before_the_failure_prevents_it() -> None:
    sim = Simulator(load_factory(), seed=3, start_time_ms=T0)
    sim.inject(FaultSpec(machine="weld-1", kind="tool_wear", start_s=60, duration_s=3000, fails=True))
    list(sim.run(until_ms=at(1000)))
    sim.act(StartMaintenance("weld-1", 300))
    assert [d for d in _down_reasons(sim, 5000, "weld-1") if d[2] == "failure"] == []
    (record,) = [r for r in sim.faults if r.source == "injected"]
    assert not record.failed and record.end_ms == at(1000)


def test_only_wear_with_a_duration_can_fail() -> None:
    with pytest.raises(ValueError, match="only wear faults"):
        FaultSpec(machine="m", kind="jam", duration_s=10, fails=True)
    with pytest.raises(ValueError, match="needs duration_s"):
        FaultSpec(machine="m", kind="bearing_wear", fails=True)
