"""What the detectors know about one signal (channel) of one machine, learned online.

Per-signal detectors live here because they share the same running statistics:

- ``level-rise`` keeps its per-state envelopes in ``processors.anomaly.context``; the signal only
  carries its smoothed value (``ewma``), restarted at every change of operating state.
- ``stuck-sensor``: the value repeats exactly for longer than the signal's learned repeat rate
  makes plausible. Values at the signal's rails (the lowest or highest it ever reported, e.g. 0 rpm
  when a spindle stops) rest legitimately and are not counted.
- ``dropped-sensor``: the value is missing (``None``) longer than the longest gap seen in normal
  operation (doubled), and at least ``dropped_min_run`` readings.
"""

from __future__ import annotations

import math

from processors.anomaly.config import AnomalyConfig

_CLIP = 4.0
"""A change larger than this many noise scales is a state transition, not noise: it is clipped
when the noise scale learns, so stopping a machine does not make its signals look noisy."""


class Signal:
    """Running statistics and per-signal detector state of one channel."""

    __slots__ = (
        "dropped_thr",
        "ewma",
        "gap",
        "hi",
        "last",
        "lo",
        "max_gap",
        "n_noise",
        "name",
        "noise",
        "repeats",
        "run",
        "steps",
        "stuck_thr",
        "unit",
    )

    def __init__(self, name: str, unit: str, config: AnomalyConfig) -> None:
        self.name = name
        self.unit = unit
        self.last: float | None = None
        self.run = 0  # identical readings in a row, the current one included
        self.gap = 0  # missing readings in a row
        self.max_gap = 0  # longest gap that ended in normal operation
        self.lo = math.inf
        self.hi = -math.inf
        self.repeats = 0  # exact repeats among `steps` learned off-rail steps
        self.steps = 0
        self.noise = 0.0
        self.n_noise = 0
        self.ewma: float | None = None  # smoothed value since the current operating state began
        self.stuck_thr = float(config.stuck_min_run)
        self.dropped_thr = float(config.dropped_min_run)

    # -- scale --------------------------------------------------------------------------------

    def scale(self) -> float:
        """Noise scale: mean absolute sample-to-sample change, floored so a constant signal
        (so far) still gives finite, huge z-scores instead of NaN when it finally moves."""
        floor = 1e-6 + 1e-4 * abs(self.last or 0.0)
        return self.noise if self.noise > floor else floor

    def on_rail(self, value: float) -> bool:
        return value <= self.lo or value >= self.hi

    # -- scores (before learning) ---------------------------------------------------------------

    def observe(self, value: float | None) -> int:
        """Advance the run and gap counters (always, learning or not); returns the length of a
        gap this reading ended (0 if none)."""
        if value is None:
            self.gap += 1
            return 0
        ended = self.gap
        self.gap = 0
        self.run = self.run + 1 if value == self.last else 1
        return ended

    def smooth(self, value: float | None, alpha: float) -> float | None:
        """Update and return the smoothed value (unchanged while the value is missing)."""
        if value is not None:
            self.ewma = value if self.ewma is None else self.ewma + (value - self.ewma) * alpha
        return self.ewma

    def stuck_score(self, value: float | None) -> float:
        if value is None or self.run < 2 or self.on_rail(value):
            return 0.0
        return float(self.run)

    # -- learning ---------------------------------------------------------------------------------

    def learn_noise(self, value: float, previous: float | None, span: int) -> None:
        if previous is None:
            return
        change = abs(value - previous)
        if change == 0.0:
            return  # quantised or resting signals repeat; their noise is in the changes
        if self.n_noise == 0:
            self.noise = change
        else:
            clipped = min(change, _CLIP * self.noise)
            self.noise += (clipped - self.noise) / min(self.n_noise + 1, span)
        self.n_noise += 1

    def learn_repeat(self, value: float, previous: float | None, config: AnomalyConfig) -> None:
        if previous is None or self.on_rail(value) or self.on_rail(previous):
            return
        self.steps += 1
        if value == previous:
            self.repeats += 1
        p = (self.repeats + 1) / (self.steps + 2)  # Laplace: never 0 or 1
        self.stuck_thr = max(float(config.stuck_min_run), math.log(config.stuck_alpha) / math.log(p))

    def learn_rails(self, value: float) -> None:
        self.lo = min(self.lo, value)
        self.hi = max(self.hi, value)

    def learn_gap(self, length: int, config: AnomalyConfig) -> None:
        """A gap of ``length`` closed without an alarm: it is part of normal operation."""
        if length > self.max_gap:
            self.max_gap = length
            self.dropped_thr = float(max(config.dropped_min_run, 2 * self.max_gap))
