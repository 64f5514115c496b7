"""The simulator's layout as a plant file: a layout is a superset of one (``twin.plant``).

>>> plant = plant_of(load_factory())
>>> plant.line_order()["line-1"]
['cnc-1', 'press-1', 'weld-1', 'paint-1', 'qc-1']
>>> plant.machine("cnc-1").signal("vibration_rms").unit
'mm/s'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.layout import FactorySpec
from sim.loader import load_factory, parse_factory
from twin.plant import Line, Machine, PlantSpec, Signal, parse_plant, read_yaml


def plant_of(factory: FactorySpec) -> PlantSpec:
    """What a plant file would say about the simulated factory (its simulation fields left out)."""
    return PlantSpec(
        name=factory.name,
        lines=tuple(
            Line(
                id=line.id,
                machines=tuple(
                    Machine(
                        id=s.id,
                        type=s.machine_type,
                        ideal_cycle_time_s=s.ideal_cycle_time_s,
                        stage=s.stage,
                        signals=tuple(Signal(name=c.name, unit=c.unit) for c in s.channels),
                    )
                    for s in line.stations
                ),
            )
            for line in factory.lines
        ),
    )


def is_simulator_layout(data: Any) -> bool:
    """Whether loaded YAML is a simulator layout (its lines have ``stations``) or a plant file."""
    lines = data.get("lines") if isinstance(data, dict) else None
    return isinstance(lines, list) and any(isinstance(x, dict) and "stations" in x for x in lines)


def load_plant_file(path: str | Path) -> PlantSpec:
    """A plant file or a simulator layout, as a ``PlantSpec``; one ``ConfigError`` line if wrong."""
    source = Path(path)
    data = read_yaml(source)
    if is_simulator_layout(data):
        return plant_of(parse_factory(data, source=str(source)))
    return parse_plant(data, str(source))


__all__ = ["is_simulator_layout", "load_factory", "load_plant_file", "plant_of"]
