"""The event stream: reproducible by seed, ordered in time, shaped as the Avro contract expects."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import subprocess
import sys
from collections.abc import Generator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import (
    DEFAULT_START_TIME_MS,
    ChannelReading,
    FactorySpec,
    PartProducedEvent,
    SimEvent,
    Simulator,
    StateChangeEvent,
    TelemetryEvent,
    load_factory,
)
from tests.unit.sim.sim_trace import HOUR_MS, MINUTE_MS, T0, layout, run
from twin.errors import SimulationError

STATES = {"RUNNING", "IDLE", "STARVED", "BLOCKED", "DOWN", "SETUP"}


@pytest.fixture(scope="module")
def factory() -> FactorySpec:
    return load_factory()


def test_same_seed_gives_the_identical_stream(factory: FactorySpec) -> None:
    _, first = run(factory, seed=42, duration_ms=HOUR_MS)
    _, second = run(factory, seed=42, duration_ms=HOUR_MS)
    assert len(first) > 10_000
    assert first == second


def test_the_stream_does_not_depend_on_the_interpreter_hash_seed(factory: FactorySpec) -> None:
    _, events = run(factory, seed=42, duration_ms=10 * MINUTE_MS)
    script = (
        "import hashlib; from sim import load_factory; from tests.unit.sim.sim_trace import run, MINUTE_MS; "
        "_, ev = run(load_factory(), seed=42, duration_ms=10 * MINUTE_MS); "
        "print(hashlib.sha256(repr(ev).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root, check=True
    )
    assert out.stdout.strip() == hashlib.sha256(repr(events).encode()).hexdigest()


def test_different_seeds_give_different_streams(factory: FactorySpec) -> None:
    _, a = run(factory, seed=1, duration_ms=10 * MINUTE_MS)
    _, b = run(factory, seed=2, duration_ms=10 * MINUTE_MS)
    assert a != b
    values_a = [r.value for e in a if isinstance(e, TelemetryEvent) for r in e.channels]
    values_b = [r.value for e in b if isinstance(e, TelemetryEvent) for r in e.channels]
    assert values_a != values_b


def test_events_never_go_back_in_time_and_stay_in_the_run_window(factory: FactorySpec) -> None:
    _, events = run(factory, seed=3, duration_ms=2 * HOUR_MS)
    times = [e.time_ms for e in events]
    assert times == sorted(times)
    assert times[0] == T0 and times[-1] <= T0 + 2 * HOUR_MS


def test_stepping_gives_the_same_stream_as_one_run(factory: FactorySpec) -> None:
    _, whole = run(factory, seed=5, duration_ms=20 * MINUTE_MS)
    sim = Simulator(factory, seed=5, start_time_ms=T0)
    stepped = []
    for _ in range(20 * 60 // 7 + 1):
        stepped.extend(sim.step(7.0))
    assert [e for e in stepped if e.time_ms <= T0 + 20 * MINUTE_MS] == whole


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=30 * MINUTE_MS), max_size=8))
def test_where_a_run_is_cut_does_not_change_the_stream(cuts: list[int]) -> None:
    factory = layout({"machine_type": "cnc"}, {"machine_type": "press", "scrap_probability": 0.1})
    _, whole = run(factory, seed=9, duration_ms=30 * MINUTE_MS)
    sim = Simulator(factory, seed=9, start_time_ms=T0)
    pieces: list[SimEvent] = []
    for cut in [*sorted(cuts), 30 * MINUTE_MS]:
        pieces.extend(sim.run(T0 + cut))
    assert pieces == whole


def test_an_abandoned_run_loses_no_events(factory: FactorySpec) -> None:
    _, whole = run(factory, seed=6, duration_ms=5 * MINUTE_MS)
    sim = Simulator(factory, seed=6, start_time_ms=T0)
    got: list[SimEvent] = []
    partial = sim.run(T0 + 5 * MINUTE_MS)
    assert isinstance(partial, Generator)
    got.extend(next(partial) for _ in range(3))  # stop in the middle of the first batch
    partial.close()
    got.extend(sim.run(T0 + 5 * MINUTE_MS))
    assert got == whole


def test_every_machine_starts_with_a_state_event_without_previous(factory: FactorySpec) -> None:
    sim = Simulator(factory, seed=1)
    first = sim.step(0)
    assert sim.start_time_ms == DEFAULT_START_TIME_MS
    starts = [e for e in first if isinstance(e, StateChangeEvent)]
    assert [e.machine_id for e in starts] == list(factory.machine_ids)
    assert all(
        e.previous is None and e.reason == "start" and e.time_ms == DEFAULT_START_TIME_MS for e in starts
    )


def test_event_fields_follow_the_contract(factory: FactorySpec) -> None:
    _, events = run(factory, seed=8, duration_ms=HOUR_MS)
    kinds = {type(e) for e in events}
    assert kinds == {TelemetryEvent, PartProducedEvent, StateChangeEvent}
    for e in events:
        assert not hasattr(e, "__dict__")  # slotted
        if isinstance(e, StateChangeEvent):
            assert e.state in STATES and (e.previous is None or e.previous in STATES)
            assert e.previous != e.state and e.reason
        elif isinstance(e, PartProducedEvent):
            assert re.fullmatch(r"line-1-\d{8}", e.part_id)
            assert e.good == (e.scrap_reason is None)
            assert e.cycle_time_s >= e.ideal_cycle_time_s > 0
        else:
            assert all(type(r) is ChannelReading and r.unit for r in e.channels)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(events[-1], "time_ms", 0)  # noqa: B010 - the attribute is read-only to mypy
    reading = next(e for e in events if isinstance(e, TelemetryEvent)).channels[0]
    assert reading == ChannelReading(reading.name, reading.value, reading.unit)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(reading, "value", 0.0)  # noqa: B010


def test_part_ids_are_serials_in_release_order(factory: FactorySpec) -> None:
    _, events = run(factory, seed=4, duration_ms=HOUR_MS)
    at_first = [e.part_id for e in events if isinstance(e, PartProducedEvent) and e.machine_id == "cnc-1"]
    serials = [int(p.rsplit("-", 1)[1]) for p in at_first]
    assert serials == sorted(serials) and len(set(serials)) == len(serials)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(min_value=-(2**63), max_value=2**63))
def test_values_are_always_finite_even_under_many_faults(seed: int) -> None:
    factory = layout(
        {"machine_type": "cnc", "telemetry_interval_s": 5, "mtbf_s": 600, "mttr_s": 60},
        {"machine_type": "welder", "telemetry_interval_s": 5},
        {"machine_type": "qc", "telemetry_interval_s": 5, "ideal_cycle_time_s": 4},
        random_faults={
            "rates_per_hour": {
                kind: 3.0
                for kind in (
                    "bearing_wear",
                    "overheating",
                    "tool_wear",
                    "stuck_sensor",
                    "dropped_sensor",
                    "jam",
                )
            },
            "severity_max": 1.0,
        },
    )
    sim, events = run(factory, seed=seed, duration_ms=2 * HOUR_MS)
    assert len(sim.faults) > 10
    for e in events:
        if isinstance(e, TelemetryEvent):
            assert all(r.value is None or math.isfinite(r.value) for r in e.channels)
        elif isinstance(e, PartProducedEvent):
            assert math.isfinite(e.cycle_time_s)


def test_run_rejects_a_relative_time() -> None:
    sim = Simulator(load_factory(), seed=1, start_time_ms=T0)
    with pytest.raises(SimulationError, match="epoch milliseconds"):
        sim.run(3_600_000)
    with pytest.raises(SimulationError, match="dt_s"):
        sim.step(-1.0)
