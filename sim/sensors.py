"""A machine's sensor channels: state-dependent targets, first-order lag, noise, sensor faults."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from sim.catalog import ChannelRole
from sim.effects import NO_EFFECTS, Effects
from sim.events import ChannelReading
from sim.layout import ChannelSpec
from sim.seeding import NoisePool

# The telemetry hot path builds readings through the slot descriptors: a frozen dataclass's __init__
# goes through object.__setattr__ per field and costs twice as much. The result is an ordinary,
# still frozen, ChannelReading.
_new = object.__new__
_SLOTS = vars(ChannelReading)
_SET_NAME: Callable[[ChannelReading, str], None] = _SLOTS["name"].__set__
_SET_VALUE: Callable[[ChannelReading, float | None], None] = _SLOTS["value"].__set__
_SET_UNIT: Callable[[ChannelReading, str], None] = _SLOTS["unit"].__set__

RUN = 0
IDLE = 1
OFF = 2
"""Sensor modes: RUNNING; IDLE, STARVED, BLOCKED or SETUP; DOWN."""


class SensorBank:
    """The channels of one machine, sampled every ``interval_ms``.

    Values start at their running levels: the simulation joins a line that was already producing.
    """

    __slots__ = (
        "_down",
        "_gain",
        "_idle",
        "_n",
        "_noise",
        "_roles",
        "_run",
        "_static",
        "last",
        "names",
        "overrides",
        "targets",
        "values",
    )

    def __init__(self, channels: Sequence[ChannelSpec], interval_ms: int, rng: np.random.Generator) -> None:
        self.names = tuple(c.name for c in channels)
        self._n = len(channels)
        self._run = [c.running for c in channels]
        self._idle = [c.idle for c in channels]
        self._down = [c.idle if c.down is None else c.down for c in channels]
        self._gain = [c.load_gain for c in channels]
        self._roles = [c.role for c in channels]
        dt_s = interval_ms / 1000
        self._static = [
            (
                c.name,
                c.unit,
                1.0 if c.tau_s == 0 else -math.expm1(-dt_s / c.tau_s),
                c.noise_rel,
                c.noise_abs,
                c.min,
                math.inf if c.max is None else c.max,
                10.0**c.decimals,
            )
            for c in channels
        ]
        self.values = list(self._run)
        self.targets = list(self._run)
        self.overrides: dict[int, float | None] = {}
        self.last: tuple[ChannelReading, ...] = ()
        self._noise = NoisePool(rng)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def set_targets(self, mode: int, load: float, effects: Effects) -> None:
        """Recompute where each channel is heading, for a machine in ``mode`` working at ``load``."""
        if mode == RUN:
            targets = [r * (1.0 + g * (load - 1.0)) for r, g in zip(self._run, self._gain, strict=True)]
        else:
            targets = list(self._idle if mode == IDLE else self._down)
        if effects is not NO_EFFECTS:
            for i, role in enumerate(self._roles):
                if role is ChannelRole.VIBRATION:
                    targets[i] *= effects.vibration_factor
                elif role is ChannelRole.TEMPERATURE and mode != OFF:
                    targets[i] += effects.temperature_offset
                elif role is ChannelRole.LOAD and mode == RUN:
                    targets[i] *= effects.load_factor
                elif role is ChannelRole.POWER and mode == RUN:
                    targets[i] *= effects.power_factor
        self.targets = targets

    def sample(self) -> tuple[ChannelReading, ...]:
        """Advance every channel by one interval and read it."""
        pool = self._noise
        k = pool.index
        if k + self._n > len(pool.values):
            pool.refill()
            k = 0
        noise = pool.values
        values = self.values
        targets = self.targets
        out = []
        make = _new
        set_name, set_value, set_unit = _SET_NAME, _SET_VALUE, _SET_UNIT
        for i, (name, unit, alpha, rel, ab, lo, hi, scale) in enumerate(self._static):
            v = values[i]
            v += (targets[i] - v) * alpha
            values[i] = v
            x = v + (rel * (v if v >= 0.0 else -v) + ab) * noise[k + i]
            if x < lo:
                x = lo
            elif x > hi:
                x = hi
            reading = make(ChannelReading)
            set_name(reading, name)
            # Half-up rounding to the channel's resolution; three times faster than round(x, n).
            set_value(reading, (x * scale + 0.5) // 1.0 / scale)
            set_unit(reading, unit)
            out.append(reading)
        pool.index = k + self._n
        if self.overrides:
            for i, value in self.overrides.items():
                name, unit = self._static[i][:2]
                out[i] = ChannelReading(name, value, unit)
        readings = tuple(out)
        self.last = readings
        return readings

    def current(self, i: int) -> float:
        """The last value channel ``i`` delivered, or its true value if it delivered none."""
        value = self.last[i].value if self.last else None
        if value is not None:
            return value
        lo, hi, scale = self._static[i][5:]
        return (min(max(self.values[i], lo), hi) * scale + 0.5) // 1.0 / scale
