"""The factory layout as the WebXR client draws it (``GET /api/layout``).

A plant file (``twin.plant``, docs/plant.md) or the simulator's layout (``sim.load_factory``),
reduced to what a 3D floor needs: lines in order, machines in flow order (with the buffer capacity
in front of each, where the simulator knows one), and their channels with units and limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim import is_simulator_layout, parse_factory
from sim.layout import FactorySpec, LineSpec
from sim.loader import DEFAULT_FACTORY_PATH
from twin.plant import PlantSpec, parse_plant, read_yaml


def layout_view(factory: FactorySpec) -> dict[str, Any]:
    return {"name": factory.name, "lines": [_line(line) for line in factory.lines]}


def _line(line: LineSpec) -> dict[str, Any]:
    stations = []
    for index, station in enumerate(line.stations):
        stations.append(
            {
                "id": station.id,
                "machine_type": station.machine_type,
                # The first station draws from an unlimited raw-material source: no buffer in front.
                "input_buffer": None if index == 0 else line.buffer_capacity(index),
                "ideal_cycle_time_s": station.ideal_cycle_time_s,
                "channels": [
                    {"name": c.name, "unit": c.unit, "role": c.role.value if c.role else None}
                    for c in station.channels
                ],
            }
        )
    return {"id": line.id, "stations": stations}


def plant_view(plant: PlantSpec) -> dict[str, Any]:
    """A plant file's layout view: the same shape, no buffers (a plant file does not model them)."""
    return {
        "name": plant.name,
        "lines": [
            {
                "id": line.id,
                "stations": [
                    {
                        "id": m.id,
                        "machine_type": m.type,
                        "kind": m.kind,
                        "input_buffer": None,
                        "ideal_cycle_time_s": m.ideal_cycle_time_s,
                        "channels": [
                            {"name": s.name, "unit": s.unit, "role": None, "low": s.low, "high": s.high}
                            for s in m.signals
                        ],
                    }
                    for m in line.machines
                ],
            }
            for line in plant.lines
        ],
    }


def load_layout(path: Path | None) -> dict[str, Any]:
    """The layout view of ``path``, a plant file or a simulator layout (default: the built-in line);
    ``ConfigError`` names a bad file."""
    source = path or DEFAULT_FACTORY_PATH
    data = read_yaml(source)
    if is_simulator_layout(data):
        return layout_view(parse_factory(data, source=str(source)))
    return plant_view(parse_plant(data, str(source)))
