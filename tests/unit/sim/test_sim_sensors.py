"""Sensor channels: units, levels that follow the machine's state, thermal lag, noise."""

from __future__ import annotations

import itertools
import statistics

import pytest

from sim import Pause, Resume, SimEvent, Simulator, load_factory
from tests.unit.sim.sim_trace import MINUTE_MS, T0, channel, layout, mean, run, telemetry, values

EXPECTED_UNITS = {
    "cnc": {
        "spindle_speed": "rpm",
        "spindle_load": "%",
        "vibration_rms": "mm/s",
        "temperature": "°C",
        "power": "kW",
    },
    "press": {
        "hydraulic_pressure": "bar",
        "ram_force": "kN",
        "oil_temperature": "°C",
        "vibration_rms": "mm/s",
        "power": "kW",
    },
    "welder": {
        "weld_current": "A",
        "wire_feed_rate": "m/min",
        "arc_voltage": "V",
        "temperature": "°C",
        "power": "kW",
    },
    "paint": {"booth_temperature": "°C", "humidity": "%", "paint_flow": "l/min", "air_pressure": "bar"},
    "qc": {"camera_temperature": "°C", "inspection_time": "s", "power": "kW"},
}


def test_every_machine_type_reports_its_channels_with_units() -> None:
    _, events = run(load_factory(), seed=1, duration_ms=MINUTE_MS)
    seen: dict[str, dict[str, str]] = {}
    for e in (
        telemetry(events, "cnc-1")
        + telemetry(events, "press-1")
        + telemetry(events, "weld-1")
        + telemetry(events, "paint-1")
        + telemetry(events, "qc-1")
    ):
        seen[e.machine_type] = {r.name: r.unit for r in e.channels}
    assert seen == EXPECTED_UNITS
    assert len(telemetry(events, "cnc-1")) == 60  # one per second


@pytest.fixture(scope="module")
def paused_cnc() -> list[SimEvent]:
    """A CNC that runs for 30 minutes, is paused for 20, then runs again for 10."""
    sim = Simulator(
        layout({"machine_type": "cnc", "telemetry_interval_s": 1, "ideal_cycle_time_s": 40}), 3, T0
    )
    events = list(sim.run(T0 + 30 * MINUTE_MS))
    sim.act(Pause("m1"))
    events += sim.run(T0 + 50 * MINUTE_MS)
    sim.act(Resume("m1"))
    events += sim.run(T0 + 60 * MINUTE_MS)
    return events


def window(events: list[SimEvent], name: str, start_min: float, end_min: float) -> list[float]:
    return values(
        channel(events, "m1", name), T0 + round(start_min * MINUTE_MS), T0 + round(end_min * MINUTE_MS)
    )


def test_levels_follow_the_state(paused_cnc: list[SimEvent]) -> None:
    running_speed = window(paused_cnc, "spindle_speed", 20, 30)
    assert 7800 < mean(running_speed) < 8200 and statistics.stdev(running_speed) > 5
    assert set(window(paused_cnc, "spindle_speed", 31, 50)) == {0.0}
    assert 14 < mean(window(paused_cnc, "power", 20, 30)) < 22
    assert 3 < mean(window(paused_cnc, "power", 31, 50)) < 4
    assert 1.5 < mean(window(paused_cnc, "vibration_rms", 20, 30)) < 3.0
    assert mean(window(paused_cnc, "spindle_load", 20, 30)) > 10 * mean(
        window(paused_cnc, "spindle_load", 31, 50)
    )


def test_temperature_moves_with_a_thermal_lag(paused_cnc: list[SimEvent]) -> None:
    temp = [v for _, v in channel(paused_cnc, "m1", "temperature") if v is not None]
    before = mean(temp[29 * 60 : 30 * 60])
    after_one_minute = mean(temp[30 * 60 + 50 : 31 * 60 + 10])
    after_twenty = mean(temp[49 * 60 : 50 * 60])
    # A step in heat input gives an exponential approach (tau = 600 s), not a jump.
    assert before - after_one_minute < 1.5
    assert 8 < before - after_twenty < 11.5  # 12 °C * (1 - exp(-19.5 min / 10 min))
    assert max(abs(b - a) for a, b in itertools.pairwise(temp)) < 1.0
    # Power, by contrast, follows the state within seconds.
    power = window(paused_cnc, "power", 30 + 5 / 60, 31)
    assert max(power) < 5


def test_the_load_of_each_part_shows_in_spindle_load() -> None:
    sim, events = run(
        layout({"machine_type": "cnc", "telemetry_interval_s": 1, "ideal_cycle_time_s": 60}),
        4,
        60 * MINUTE_MS,
    )
    load = values(channel(events, "m1", "spindle_load"), T0, T0 + 60 * MINUTE_MS)
    per_cycle = [mean(load[i : i + 55]) for i in range(3, len(load) - 60, 62)]
    assert statistics.stdev(per_cycle) > 0.5  # parts differ, beyond sample noise
    assert sim.observe().machine("m1").parts_done > 50
