"""The factory layout as the WebXR client draws it (``GET /api/layout``).

The same YAML the simulator runs (``sim.load_factory``), reduced to what a 3D floor needs: lines in
order, stations in flow order with the buffer capacity in front of each, and their channels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim import load_factory
from sim.layout import FactorySpec, LineSpec
from sim.loader import DEFAULT_FACTORY_PATH


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


def load_layout(path: Path | None) -> dict[str, Any]:
    """The layout view of ``path`` (default: the built-in line); ``ConfigError`` names a bad file."""
    return layout_view(load_factory(path or DEFAULT_FACTORY_PATH))
