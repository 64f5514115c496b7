"""``level-rise``: a signal rises above what is normal for it in the machine's current operating state.

Per operating state (context) and signal the detector keeps two *envelopes* (``1 - quantile``,
median and ``quantile`` quantiles): one of the raw value, one of the value smoothed over
``level_span`` readings once the state has lasted that long (so it describes the state, not the
transition into it). Each freezes once calibrated (the raw one with its context, the smoothed one
after ``SMOOTH_SPANS`` x ``level_span`` smoothed values, at least ``warmup_events``): a tail
quantile that kept learning would let a slow drift raise its own threshold ahead of itself. After
that only their centre follows slow legitimate drift (``follow``, ``drift_tau_s``).

A reading's score is how far it lies above the state's median in units of the spread up to the upper
quantile (1 = at the upper quantile), for the raw value and, once the state has lasted a while, for
the smoothed value (a small rise that persists: tool wear); the reading itself must agree, so a rise
that has ended is not prolonged by the average's memory. The threshold is ``1 + level_margin``.

>>> from processors.anomaly.config import AnomalyConfig
>>> d = LevelRise(AnomalyConfig(warmup_events=40, quantile=0.99))
>>> d.add_signal()
>>> for i in range(40):
...     d.learn_one(0, 10.0 + (i % 5) * 0.1, None)
>>> d.freeze()
>>> d.score_one(0, 10.2, None, 0.1) > d.threshold, d.score_one(0, 11.0, None, 0.1) > d.threshold
(False, True)
"""

from __future__ import annotations

import math
from typing import Any

from processors.anomaly.config import AnomalyConfig
from processors.anomaly.quantile import Quantile
from processors.anomaly.serial import float_list, floats, integer

_OPEN = 2**62
"""Values an envelope learns before it freezes by itself: never (the raw envelopes freeze with their
context)."""


class Envelope:
    """Per signal: the ``1 - q``, median and ``q`` quantiles of its values in one context, learned
    until ``need`` values were seen and then frozen; an uncalibrated signal's envelope is open.

    >>> e = Envelope(q=0.99, need=40)
    >>> e.add_signal()
    >>> for i in range(40):
    ...     e.learn(0, 10.0 + (i % 5) * 0.1)
    >>> e.ready(0), e.lo[0] <= 10.2 <= e.hi[0]
    (True, True)
    """

    def __init__(self, q: float, need: int) -> None:
        self._q = q
        self._need = need
        self._quantiles: list[tuple[Quantile, Quantile, Quantile] | None] = []
        self._seen: list[int] = []
        self.lo: list[float] = []
        self.med: list[float] = []
        self.hi: list[float] = []

    def add_signal(self) -> None:
        self._quantiles.append(None)
        self._seen.append(0)
        self.lo.append(-math.inf)
        self.med.append(0.0)
        self.hi.append(math.inf)

    def ready(self, i: int) -> bool:
        return self.hi[i] < math.inf

    def learn(self, i: int, value: float, *, can_freeze: bool = True) -> None:
        """Learn one value of signal ``i`` (ignored once that signal's envelope is frozen)."""
        if self.hi[i] < math.inf:
            return
        qs = self._quantiles[i]
        if qs is None:
            qs = self._quantiles[i] = (Quantile(1 - self._q), Quantile(0.5), Quantile(self._q))
        for q in qs:
            q.update(value)
        self._seen[i] += 1
        if can_freeze and self._seen[i] >= self._need:
            self.freeze(i)

    def freeze(self, i: int) -> None:
        """Fix signal ``i``'s envelope from what it learned (one never seen stays open)."""
        qs = self._quantiles[i]
        if qs is None:
            return
        self.lo[i], self.med[i], self.hi[i] = (float(q.get() or 0.0) for q in qs)
        self._quantiles[i] = None  # the streaming quantiles are no longer needed: smaller snapshots

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen": list(self._seen),
            "lo": floats(self.lo),
            "med": floats(self.med),
            "hi": floats(self.hi),
            "quantiles": [None if qs is None else [q.to_dict() for q in qs] for qs in self._quantiles],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, q: float, need: int) -> Envelope:
        e = cls(q, need)
        e._seen = [integer(n) for n in d["seen"]]
        n = len(e._seen)
        e.lo, e.med, e.hi = float_list(d["lo"], n), float_list(d["med"], n), float_list(d["hi"], n)
        quantiles = d["quantiles"]
        if not isinstance(quantiles, list) or len(quantiles) != n:
            msg = f"expected {n} quantile triples"
            raise ValueError(msg)
        for qs in quantiles:
            if qs is None:
                e._quantiles.append(None)
            else:
                lo, med, hi = (Quantile.from_dict(x) for x in qs)
                e._quantiles.append((lo, med, hi))
        return e


class LevelRise:
    """The ``level-rise`` detector of one operating state of one machine, over all its signals
    (index ``i``); see the module docstring."""

    def __init__(self, config: AnomalyConfig) -> None:
        self.threshold = 1.0 + config.level_margin
        self.raw = Envelope(config.quantile, _OPEN)  # frozen with the context (``freeze``)
        self.smooth = Envelope(config.quantile, smooth_need(config))

    def add_signal(self) -> None:
        """A signal joined the machine; until it is calibrated here its envelopes are open."""
        self.raw.add_signal()
        self.smooth.add_signal()

    def score_one(self, i: int, value: float, smoothed: float | None, scale: float) -> float:
        """How far ``value`` (and ``smoothed``, once the state lasted ``level_span`` readings; else
        None) of signal ``i`` is above normal; ``scale`` is its noise scale, the least spread."""
        score = _above(value, self.raw.med[i], self.raw.hi[i], scale)
        if smoothed is not None and self.smooth.ready(i):
            med, hi = self.smooth.med[i], self.smooth.hi[i]
            score = max(score, min(_above(smoothed, med, hi, scale), _above(value, med, hi, scale)))
        return score

    def learn_one(self, i: int, value: float, smoothed: float | None, *, can_freeze: bool = True) -> None:
        """Calibration: a value of signal ``i`` in normal operation (``smoothed`` once steady)."""
        self.raw.learn(i, value)
        if smoothed is not None:
            self.smooth.learn(i, smoothed, can_freeze=can_freeze)

    def learn_smoothed(self, i: int, smoothed: float) -> None:
        """After calibration: the smoothed envelope of a signal that has not seen enough settled
        readings keeps learning from normal ones."""
        if not self.smooth.ready(i):
            self.smooth.learn(i, smoothed)

    def freeze(self) -> None:
        """End calibration: raw envelopes are fixed (signals never seen stay open)."""
        for i in range(len(self.raw.hi)):
            self.raw.freeze(i)

    def follow(self, i: int, value: float, smoothed: float | None, rate: float) -> None:
        """Slow legitimate drift: signal ``i``'s envelopes keep their shape and their centre moves
        ``rate`` of the way towards a normal reading (the caller gates it: readings of an ongoing
        anomaly never teach). Only a reading inside the envelope teaches, so a rise cannot lift
        its own threshold."""
        for env, v in ((self.raw, value), (self.smooth, smoothed)):
            if v is None or not env.ready(i) or not env.lo[i] <= v <= env.hi[i]:
                continue
            step = rate * (v - env.med[i])
            env.lo[i] += step
            env.med[i] += step
            env.hi[i] += step

    def to_dict(self) -> dict[str, Any]:
        return {"raw": self.raw.to_dict(), "smooth": self.smooth.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], config: AnomalyConfig) -> LevelRise:
        out = cls(config)
        out.raw = Envelope.from_dict(d["raw"], q=config.quantile, need=_OPEN)
        out.smooth = Envelope.from_dict(d["smooth"], q=config.quantile, need=smooth_need(config))
        if len(out.raw.hi) != len(out.smooth.hi):
            msg = "raw and smoothed envelopes cover different signals"
            raise ValueError(msg)
        return out


SMOOTH_SPANS = 3
"""Smoothed values a smoothed envelope learns before it freezes, in ``level_span``s (at least
``warmup_events``): consecutive values smoothed over ``level_span`` readings are nearly one sample,
so an envelope frozen after one span knew the spread of a few minutes only (seed 5's cnc-1
``spindle_load`` sat above it for hours). Three spans: more made seed 3 lose a detection
(2026-12-07, docs/anomaly-detection.md)."""


def smooth_need(config: AnomalyConfig) -> int:
    """Smoothed values a smoothed envelope learns before it freezes."""
    return max(config.warmup_events, SMOOTH_SPANS * config.level_span)


def _above(value: float, med: float, hi: float, scale: float) -> float:
    """``value`` above ``med`` in units of the spread ``hi - med`` (at least one noise scale)."""
    if hi == math.inf:
        return 0.0
    return (value - med) / max(hi - med, scale)
