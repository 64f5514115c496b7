"""Layout files: the default one, and one clear ConfigError naming file and field for a bad one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sim import DEFAULT_FACTORY_PATH, FaultKind, load_factory
from twin.errors import ConfigError, TwinError

GOOD: dict[str, Any] = {
    "lines": [
        {
            "id": "l1",
            "stations": [
                {"id": "a", "machine_type": "cnc", "ideal_cycle_time_s": 30},
                {"id": "b", "machine_type": "qc", "ideal_cycle_time_s": 10, "input_buffer": 4},
            ],
        }
    ]
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "factory.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def with_station(**fields: object) -> dict[str, Any]:
    first, second = GOOD["lines"][0]["stations"]
    return {"lines": [{"id": "l1", "stations": [first, {**second, **fields}]}]}


def test_the_default_layout_is_the_documented_line() -> None:
    factory = load_factory()
    assert load_factory(DEFAULT_FACTORY_PATH) == factory
    (line,) = factory.lines
    assert line.id == "line-1"
    assert [(s.id, s.machine_type) for s in line.stations] == [
        ("cnc-1", "cnc"),
        ("press-1", "press"),
        ("weld-1", "welder"),
        ("paint-1", "paint"),
        ("qc-1", "qc"),
    ]
    assert all(s.telemetry_interval_s == 1.0 for s in line.stations)
    units = {(s.machine_type, c.name): c.unit for s in line.stations for c in s.channels}
    assert units[("cnc", "spindle_speed")] == "rpm" and units[("press", "hydraulic_pressure")] == "bar"
    assert units[("welder", "weld_current")] == "A" and units[("paint", "paint_flow")] == "l/min"
    assert units[("qc", "inspection_time")] == "s"
    assert {f.kind for f in factory.scenario.faults} == set(FaultKind)


def test_a_good_layout_fills_in_built_in_channels(tmp_path: Path) -> None:
    factory = load_factory(write(tmp_path, GOOD))
    a, b = factory.lines[0].stations
    assert [c.name for c in a.channels] == [
        "spindle_speed",
        "spindle_load",
        "vibration_rms",
        "temperature",
        "power",
    ]
    assert b.input_buffer == 4 and factory.lines[0].buffer_capacity(1) == 4


def test_channels_can_be_picked_overridden_or_defined(tmp_path: Path) -> None:
    custom = {"name": "coolant_flow", "unit": "l/min", "running": 12, "idle": 0}
    factory = load_factory(
        write(tmp_path, with_station(channels=["power", {"name": "camera_temperature", "tau_s": 60}, custom]))
    )
    power, camera, coolant = factory.lines[0].stations[1].channels
    assert power.unit == "kW" and camera.tau_s == 60 and camera.unit == "°C"
    assert coolant.running == 12 and coolant.noise_abs == 0


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            with_station(scrap_probability=1.5),
            "lines[0].stations[1].scrap_probability: Input should be less than 1",
        ),
        (
            with_station(ideal_cycle_time_s="fast"),
            "lines[0].stations[1].ideal_cycle_time_s: Input should be a valid",
        ),
        (
            with_station(scrap_probabilty=0.1),
            "lines[0].stations[1].scrap_probabilty: Extra inputs are not permitted",
        ),
        (with_station(input_buffer=0), "lines[0].stations[1].input_buffer: Input should be greater than 0"),
        (
            with_station(channels=["power", "spindle_speed"]),
            "lines[0].stations[1].channels[1]: 'spindle_speed'",
        ),
        (
            with_station(channels=[{"name": "x", "unit": "V"}]),
            "lines[0].stations[1].channels[0].running: Field",
        ),
        (
            with_station(machine_type="robot"),
            "lines[0].stations[1]: machine_type 'robot' has no built-in channels",
        ),
        (with_station(id="a"), "lines[0].stations: duplicate station id(s) a"),
        (with_station(mtbf_s=float("nan")), "lines[0].stations[1].mtbf_s: Input should be a finite number"),
        (
            {
                "lines": [
                    {
                        "id": "l",
                        "stations": [
                            {"id": "a", "machine_type": "cnc", "ideal_cycle_time_s": 1, "input_buffer": 3}
                        ],
                    }
                ]
            },
            "lines[0].stations[0].input_buffer: the first station draws from an unlimited raw-material source",
        ),
        (
            {**GOOD, "scenario": {"faults": [{"machine": "zz", "kind": "jam"}]}},
            "scenario.faults[0]: unknown machine",
        ),
        (
            {**GOOD, "scenario": {"faults": [{"machine": "b", "kind": "bearing_wear"}]}},
            "scenario.faults[0]: bearing_wear needs a channel with role vibration",
        ),
        (
            {**GOOD, "scenario": {"faults": [{"machine": "a", "kind": "melt"}]}},
            "scenario.faults[0].kind: Input should be",
        ),
        (
            {**GOOD, "random_faults": {"rates_per_hour": {"jam": -1}}},
            "random_faults.rates_per_hour.jam: Input should be",
        ),
        ({"lines": []}, "lines: a factory needs at least one line"),
        ({"line": GOOD["lines"]}, "lines: Field required"),
        ([1, 2], "a factory layout is a mapping"),
    ],
)
def test_a_bad_layout_names_the_file_and_the_field(tmp_path: Path, data: object, expected: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_factory(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "lines:\n  - id: l1\n    stations: [\n")
    with pytest.raises(ConfigError, match=r"factory\.yaml: not valid YAML \(line 4"):
        load_factory(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(TwinError, match="cannot read the factory layout"):
        load_factory(tmp_path / "nope.yaml")


def test_machine_ids_are_unique_across_lines(tmp_path: Path) -> None:
    station = {"id": "m", "machine_type": "press", "ideal_cycle_time_s": 5}
    data = {"lines": [{"id": "x", "stations": [station]}, {"id": "y", "stations": [station]}]}
    with pytest.raises(
        ConfigError, match=r"lines\[1\]\.stations\[0\]\.id: machine id 'm' is already used on line 'x'"
    ):
        load_factory(write(tmp_path, data))
