"""Online degradation features of one unit: exponentially weighted level and trend of each signal.

Every feature is an exponentially weighted least-squares fit over the unit's past readings, one per
time constant (``spans``, in the unit of the time axis): its *level* (the weighted mean) and its
*slope* (the weighted least-squares slope against time). A short span follows the present, a long
one remembers the unit's own baseline; together they say how far and how fast each signal has moved.
The state is five accumulators per span, whatever the history's length, and the offline feature
table for training is computed by this same class, reading by reading, so training and serving can
never disagree.

>>> f = Features(("a",), spans=(2.0,))
>>> for t in range(5):
...     x = f.update(float(t), {"a": 10.0 + 3.0 * t})
>>> [round(v, 6) for v in x.tolist()]  # level of a, slope of a (3 per unit of time), age
[18.7169, 3.0, 4.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Scalars = tuple[tuple[float, float, float], ...]
TimeCache = dict[tuple[float, int], tuple[Scalars, FloatArray]]
"""Shared by the units of one model: (regular step, readings) -> (scalars, coefficients)."""
CACHE_LIMIT = 20_000
"""Entries a ``TimeCache`` grows to at most (a few MB); beyond, units compute their own."""

AGE = "age"
"""Name of the pseudo-signal "time since this unit's first reading" in feature and contributor lists."""


class Features:
    """The feature vector of one unit after each of its readings (``update``).

    Layout: for each span, the level of every signal then the slope of every signal; last, the age
    (time since the unit's first reading). A signal missing from a reading (or not finite) keeps its
    previous value; before its first value it counts as ``fill`` (the training mean, so an unknown
    signal looks ordinary rather than extreme).
    """

    __slots__ = (
        "_acc",
        "_cache",
        "_coef",
        "_decay",
        "_dt",
        "_k",
        "_last",
        "_move",
        "_n",
        "_rates",
        "_reg",
        "_scalars",
        "_t0",
        "_tl",
        "signals",
        "size",
    )

    def __init__(
        self,
        signals: Sequence[str],
        spans: Sequence[float],
        fill: Iterable[float] | None = None,
        cache: TimeCache | None = None,
    ) -> None:
        self.signals = tuple(signals)
        k, m = len(self.signals), len(spans)
        self._k = k
        self._rates = [1.0 / float(s) for s in spans]  # decay per unit of time
        self._last = [0.0] * k if fill is None else [float(v) for v in fill]  # last finite value per signal
        # Weighted sums, time measured from the latest reading (so they stay small). Per span: the
        # weights, times and squared times (``_scalars``: they depend on the time axis only) and,
        # per signal, values and time x values (``_acc[span, 0]`` and ``_acc[span, 1]``).
        self._scalars: Scalars = ((0.0, 0.0, 0.0),) * m
        self._coef = np.zeros((m, 2, 2))  # features = coef @ acc, per span (from the scalars)
        self._acc = np.zeros((m, 2, k))
        # The last time step, its decay and its map of the sums per span: regular sampling reuses it.
        self._dt = math.nan
        self._decay = [1.0] * m
        self._move = np.zeros((m, 2, 2))
        # The scalars depend on the time steps alone: units sampled at one regular step share them
        # through ``cache``, keyed by (step, readings). ``_reg``: this unit's step so far, or None.
        self._cache = cache
        self._reg: float | None = 0.0
        self._t0 = math.nan  # time of the first reading
        self._tl = math.nan  # time of the latest reading
        self._n = 0
        self.size = 2 * m * k + 1

    @property
    def readings(self) -> int:
        return self._n

    @property
    def last_time(self) -> float:
        """Time of the latest reading (NaN before the first)."""
        return self._tl

    def values(self, reading: Mapping[str, Any]) -> FloatArray:
        """The reading's value of each signal; a missing or non-finite one is its previous value."""
        last = self._last
        for i, name in enumerate(self.signals):
            v = reading.get(name)
            if v is not None:
                x = float(v)
                if x - x == 0.0:  # finite (NaN and infinities give NaN)
                    last[i] = x
        return np.array(last)

    def update(self, t: float, reading: Mapping[str, Any]) -> FloatArray:
        """Take the reading at time ``t`` (not before the previous one) and return the features."""
        x = self.values(reading)
        n = self._n
        dt = 0.0
        if n == 0:
            self._t0 = t
        else:
            dt = t - self._tl
            if dt < 0:
                msg = f"time went back from {self._tl} to {t}"
                raise ValueError(msg)
            if dt > 0:
                if dt != self._dt:
                    # Move the origin to t (t_i -> t_i - dt), then decay the old readings' weights:
                    # (sx, stx) -> d * (sx, stx - dt * sx).
                    self._dt = dt
                    self._decay = [math.exp(-dt * r) for r in self._rates]
                    self._move = np.array([[[d, 0.0], [-dt * d, d]] for d in self._decay])
                self._acc = self._move @ self._acc
            if n == 1:
                self._reg = dt
            elif dt != self._reg:
                self._reg = None
        self._tl = t
        self._n = n + 1
        # The new reading sits at time 0: it adds to the weight and value sums only.
        self._acc[:, 0, :] += x
        cache, reg = self._cache, self._reg
        hit = cache.get((reg, n + 1)) if cache is not None and reg is not None else None
        if hit is None:
            scalars = self._scalars
            if dt > 0:
                scalars = tuple(
                    (d * sw, d * (st - dt * sw), d * (stt - 2.0 * dt * st + dt * dt * sw))
                    for (sw, st, stt), d in zip(scalars, self._decay, strict=True)
                )
            self._scalars = tuple((sw + 1.0, st, stt) for sw, st, stt in scalars)
            self._coef = _coefficients(self._scalars)
            if cache is not None and reg is not None and len(cache) < CACHE_LIMIT:
                cache[reg, n + 1] = (self._scalars, self._coef)
        else:
            self._scalars, self._coef = hit
        return self.current()

    def current(self) -> FloatArray:
        """The features after the latest reading (zeros before the first)."""
        if self._n == 0:
            return np.zeros(self.size)
        out = np.empty(self.size)
        acc = self._acc
        np.matmul(self._coef, acc, out=out[:-1].reshape(acc.shape))
        out[-1] = self._tl - self._t0
        return out

    # -- state ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self._n,
            "t0": self._t0 if self._n else None,
            "tl": self._tl if self._n else None,
            "last": list(self._last),
            "scalars": [list(s) for s in self._scalars],
            "acc": self._acc.tolist(),
            "step": self._reg,
        }

    def load(self, doc: Mapping[str, Any]) -> None:
        """Continue from ``to_dict``'s state (same signals and spans)."""
        shape = self._acc.shape
        n = doc["n"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            msg = f"bad reading count {n!r}"
            raise ValueError(msg)
        last = _array(doc["last"], (self._k,))
        scalars = _array(doc["scalars"], (shape[0], 3))
        self._acc = _array(doc["acc"], shape)
        self._n = n
        self._t0 = float(doc["t0"]) if n else math.nan
        self._tl = float(doc["tl"]) if n else math.nan
        self._last = last.tolist()
        self._scalars = tuple((sw, st, stt) for sw, st, stt in scalars.tolist())
        self._coef = _coefficients(self._scalars)
        step = doc.get("step")
        self._reg = None if step is None else float(step)
        self._dt = math.nan


def _coefficients(scalars: Scalars) -> FloatArray:
    """Per span, the 2x2 map from the (values, time x values) sums to (level, slope): level =
    sx / sw; slope = (sw*stx - st*sx) / (sw*stt - st^2). With one distinct time the slope is
    undefined: 0 (nothing has moved yet)."""
    coef: list[float] = []
    for sw, st, stt in scalars:
        var = sw * stt - st * st
        inv = 1.0 / var if var > 1e-12 * sw * sw else 0.0
        coef += (1.0 / sw, 0.0, -st * inv, sw * inv)
    return np.array(coef).reshape(-1, 2, 2)


def feature_names(signals: Sequence[str], spans: Sequence[float]) -> list[str]:
    """Names of the features in ``Features``' layout: ``level(s2, 10)``, ``slope(s2, 10)``, ``age``."""
    names = []
    for span in spans:
        names += [f"level({s}, {span:g})" for s in signals]
        names += [f"slope({s}, {span:g})" for s in signals]
    return [*names, AGE]


def feature_signal_index(signals: Sequence[str], spans: Sequence[float]) -> npt.NDArray[np.int64]:
    """For each feature, the index of its signal in ``(*signals, AGE)``."""
    k = len(signals)
    return np.array([*(i for _ in range(2 * len(spans)) for i in range(k)), k], dtype=np.int64)


def _array(v: Any, shape: tuple[int, ...]) -> FloatArray:
    a = np.array(v, dtype=np.float64)
    if a.shape != shape:
        msg = f"expected an array of shape {shape}, not {a.shape}"
        raise ValueError(msg)
    return a
