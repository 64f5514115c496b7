"""Plant files: what they accept, the one-line errors, and the simulator's layout as a superset."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import load_factory, load_plant_file, plant_of
from twin.errors import ConfigError
from twin.plant import parse_plant
from xr_gateway.layout import load_layout

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "docs" / "examples" / "water-works.yaml"


def test_the_example_plant_has_two_lines_of_continuous_machines() -> None:
    plant = load_plant_file(EXAMPLE)
    assert plant.line_order() == {"water": ["pump-1", "pump-2"], "bottling": ["filler-1"]}
    pump = plant.machine("pump-1")
    assert pump is not None and pump.kind == "continuous" and pump.nominal_rate == 40
    assert pump.running_when is not None and pump.running_when.channel == "flow"
    assert plant.line_of("filler-1") == "bottling"


def test_the_simulator_layout_is_a_superset() -> None:
    default = ROOT / "sim" / "factories" / "default.yaml"
    plant = load_plant_file(default)
    assert plant == plant_of(load_factory(default))
    cnc = plant.machine("cnc-1")
    assert cnc is not None and cnc.kind == "discrete" and cnc.ideal_cycle_time_s == 42


def test_the_3d_floor_draws_every_line_of_a_plant_file() -> None:
    view = load_layout(EXAMPLE)
    assert [line["id"] for line in view["lines"]] == ["water", "bottling"]
    pump = view["lines"][0]["stations"][0]
    assert (pump["id"], pump["machine_type"], pump["kind"], pump["input_buffer"]) == (
        "pump-1", "pump", "continuous", None,
    )  # fmt: skip
    assert pump["channels"][1] == {
        "name": "pressure_out",
        "unit": "bar",
        "role": None,
        "low": None,
        "high": 8.0,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lines": []}, "lines: Tuple should have at least 1 item"),
        ({"lines": [{"id": "l", "machines": [{"id": "p", "type": "pump", "simulate": True}]}]}, "simulate"),
        (
            {"lines": [{"id": "l", "machines": [{"id": "p", "type": "pump", "rate_channel": "flow"}]}]},
            "rate_channel and nominal_rate go together",
        ),
        (
            {"lines": [{"id": "l", "machines": [
                {"id": "p", "type": "pump", "kind": "continuous", "running_when": {"channel": "flw", "above": 1},
                 "signals": [{"name": "flow", "unit": "m3/h"}]}]}]},
            "'flw' is not one of the machine's signals (flow)",
        ),
        (
            {"lines": [{"id": "a", "machines": [{"id": "p", "type": "pump"}]},
                       {"id": "b", "machines": [{"id": "p", "type": "pump"}]}]},
            "machine 'p' is on two lines (a and b)",
        ),
        ([1, 2], "a plant file is a mapping"),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_naming_the_field(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^plant\.yaml: ") as info:
        parse_plant(data, "plant.yaml")
    assert message in str(info.value) and "\n" not in str(info.value)
