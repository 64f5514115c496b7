"""Built-in machine types: their sensor channels with plausible levels, and how they fail parts.

A station of a known type may omit ``channels`` (it gets all of them), list channel names, or override
single fields of a channel. Levels are steady-state targets per state: ``running`` (scaled by the part's
load through ``load_gain``), ``idle`` (IDLE, STARVED, BLOCKED, SETUP) and ``down``. A channel follows
its target with a first-order lag of ``tau_s`` (thermal channels are slow) plus gaussian noise of
``noise_rel * |value| + noise_abs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ChannelRole(StrEnum):
    """What a channel measures, as far as fault effects care."""

    VIBRATION = "vibration"
    TEMPERATURE = "temperature"
    LOAD = "load"
    POWER = "power"


@dataclass(frozen=True)
class MachineType:
    defect_reason: str
    """scrap_reason when this station scraps a part, or tags a latent defect caused by a fault."""
    inspects: bool = False
    """An inspection station also rejects parts carrying latent defects from upstream."""
    channels: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def _ch(name: str, unit: str, running: float, idle: float, down: float, **kw: Any) -> dict[str, Any]:
    return {"name": name, "unit": unit, "running": running, "idle": idle, "down": down, **kw}


_T = ChannelRole.TEMPERATURE.value
_V = ChannelRole.VIBRATION.value
_L = ChannelRole.LOAD.value
_P = ChannelRole.POWER.value

MACHINE_TYPES: dict[str, MachineType] = {
    # 5-axis machining centre: the spindle spins up in seconds, the spindle housing warms over minutes.
    "cnc": MachineType(
        defect_reason="dimension_out_of_tolerance",
        channels=(
            _ch("spindle_speed", "rpm", 8000, 0, 0, noise_rel=0.002, tau_s=2, decimals=0, max=24000),
            _ch(
                "spindle_load", "%", 45, 2, 0, noise_rel=0.04, noise_abs=0.3, load_gain=1.0, max=150, role=_L
            ),
            _ch("vibration_rms", "mm/s", 2.2, 0.3, 0.05, noise_rel=0.08, noise_abs=0.02, tau_s=1, role=_V),
            _ch("temperature", "°C", 38, 26, 22, noise_abs=0.12, tau_s=600, role=_T),
            _ch("power", "kW", 18, 3.5, 0.4, noise_rel=0.03, noise_abs=0.05, load_gain=0.7, role=_P),
        ),
    ),
    # Hydraulic press: the pump idles at low pressure between strokes; oil temperature moves slowly.
    "press": MachineType(
        defect_reason="crack",
        channels=(
            _ch(
                "hydraulic_pressure", "bar", 180, 40, 0, noise_rel=0.02, noise_abs=0.5, tau_s=1, load_gain=0.5
            ),
            _ch("ram_force", "kN", 1800, 0, 0, noise_rel=0.03, load_gain=1.0, decimals=1, role=_L),
            _ch("oil_temperature", "°C", 48, 40, 30, noise_abs=0.1, tau_s=900, role=_T),
            _ch("vibration_rms", "mm/s", 3.5, 0.6, 0.05, noise_rel=0.08, noise_abs=0.03, tau_s=1, role=_V),
            _ch("power", "kW", 55, 9, 0.8, noise_rel=0.03, noise_abs=0.1, load_gain=0.8, role=_P),
        ),
    ),
    # MIG welding robot: arc on while running; torch cooling water warms within a few minutes.
    "welder": MachineType(
        defect_reason="weld_porosity",
        channels=(
            _ch("weld_current", "A", 220, 0, 0, noise_rel=0.04, load_gain=0.5, decimals=1, role=_L),
            _ch("wire_feed_rate", "m/min", 9.5, 0, 0, noise_rel=0.02),
            _ch("arc_voltage", "V", 24.5, 0, 0, noise_rel=0.03),
            _ch("temperature", "°C", 55, 30, 24, noise_abs=0.15, tau_s=180, role=_T),
            _ch("power", "kW", 7.5, 0.6, 0.2, noise_rel=0.04, noise_abs=0.02, load_gain=0.6, role=_P),
        ),
    ),
    # Spray booth: climate-controlled, so temperature and humidity barely depend on the state.
    "paint": MachineType(
        defect_reason="coating_defect",
        channels=(
            _ch("booth_temperature", "°C", 23, 22.5, 21, noise_abs=0.08, tau_s=600, role=_T),
            _ch("humidity", "%", 62, 60, 58, noise_abs=0.3, tau_s=900, max=100),
            _ch("paint_flow", "l/min", 0.35, 0, 0, noise_rel=0.04, decimals=3, load_gain=0.3),
            _ch("air_pressure", "bar", 5.8, 6.3, 6.2, noise_abs=0.03, tau_s=3),
        ),
    ),
    # Vision inspection cell.
    "qc": MachineType(
        defect_reason="inspection_reject",
        inspects=True,
        channels=(
            _ch("camera_temperature", "°C", 41, 38, 25, noise_abs=0.1, tau_s=600, role=_T),
            _ch("inspection_time", "s", 3.2, 0, 0, noise_rel=0.05, decimals=3),
            _ch("power", "kW", 1.2, 0.8, 0.05, noise_rel=0.02, noise_abs=0.01, role=_P),
        ),
    ),
}

LATENT_DEFECT_DETECTION = 0.95
"""Share of latent defects an inspection station catches; the rest ship."""


def default_channel(machine_type: str, name: str) -> dict[str, Any] | None:
    kind = MACHINE_TYPES.get(machine_type)
    if kind is None:
        return None
    return next((dict(c) for c in kind.channels if c["name"] == name), None)
