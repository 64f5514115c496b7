"""The multivariate detector: how far a machine's reading is from every operating state it knows.

``RegimeDetector`` keeps prototypes (centres of operating states: running, idle, a setup, with
each signal at its level) in the signals' own noise units. A reading's score is its root-mean-square
distance, in noise units per signal, to the nearest prototype; the signals that differ most from
that prototype are the anomaly's contributors. It learns like leader clustering: a normal reading
refines its nearest prototype or, if none is within ``prototype_radius``, starts a new one.

Why not HalfSpaceTrees: its mass profile only covers the last window (a few hundred readings), so
a machine that stops once a shift is "new" at every stop, and the threshold has to be set so loose
that slow changes pass. Prototypes remember every operating state until memory runs out.

Its threshold is calibrated per operating state: ``regime_margin`` times the ``quantile`` of the
scores seen while that state calibrated (and at least ``prototype_radius``).

>>> d = RegimeDetector(radius=2.0, max_prototypes=16, quantile=0.99, margin=1.5)
>>> for v in (10.0, 10.1, 9.9, 10.0):
...     d.learn_one([v], [0.1])
>>> round(d.score_one([10.05], [0.1])[0], 1), round(d.score_one([12.0], [0.1])[0], 1), d.threshold()
(0.5, 20.0, 3.0)
>>> e = RegimeDetector.from_dict(d.to_dict(), radius=2.0, max_prototypes=16, quantile=0.99, margin=1.5)
>>> e.size, e.score_one([12.0], [0.1])[0] == d.score_one([12.0], [0.1])[0]
(1, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from processors.anomaly.quantile import Quantile
from processors.anomaly.serial import FloatArray, array, from_array, integer

_Z_CAP = 1e4
"""Caps one signal's distance so a signal that was constant until now (noise scale ~0) cannot
turn the score into inf/NaN."""
_COUNT_CAP = 2000
"""Prototype centres move by 1/count per reading, at most down to 1/_COUNT_CAP: long memory that
still follows the slow drift of a normal level (a warming room)."""


class RegimeDetector:
    """Nearest-prototype novelty over the signals of one machine (river-style ``learn_one`` /
    ``score_one`` on sequences of floats in a fixed signal order; ``add_signal`` widens it)."""

    def __init__(self, radius: float, max_prototypes: int, quantile: float, margin: float) -> None:
        self.radius = radius
        self.max_prototypes = max_prototypes
        self.margin = margin
        self.centres: FloatArray = np.zeros((0, 0))
        self.counts: FloatArray = np.zeros(0)
        self.used: FloatArray = np.zeros(0)  # learn count when each prototype was last refined
        self.learned = 0
        self.calibration = Quantile(quantile)  # of the scores of normal readings in calibration

    @property
    def size(self) -> int:
        return int(self.centres.shape[0])

    @property
    def width(self) -> int:
        return int(self.centres.shape[1])

    def threshold(self) -> float:
        """Scores above this are abnormal: the calibrated score quantile (at least the prototype
        radius) times the margin."""
        q = self.calibration.get()
        return max(self.radius, q if q is not None else 0.0) * self.margin

    def calibrate_one(self, score: float) -> None:
        """One score of a normal reading while the operating state calibrates (finite scores only)."""
        self.calibration.update(score)

    def add_signal(self, first_value: float) -> None:
        """A signal joined the machine: every known state is assumed to have had its first value."""
        column = np.full((self.size, 1), first_value)
        self.centres = np.hstack([self.centres, column])

    def score_one(
        self, x: Sequence[float], scale: Sequence[float], free: FloatArray | None = None
    ) -> tuple[float, int, FloatArray]:
        """(score, nearest prototype index or -1, per-signal distances in noise units).

        ``free`` (optional, per signal -1, 0 or +1): a signal may lie below (-1) or above (+1) a
        prototype at no distance, e.g. a temperature still relaxing after a change of state."""
        xv = np.asarray(x, dtype=np.float64)
        d = xv.shape[0]
        if self.size == 0:
            return float("inf"), -1, np.zeros(d)
        diff = (xv - self.centres) / np.asarray(scale, dtype=np.float64)
        np.clip(diff, -_Z_CAP, _Z_CAP, out=diff)
        if free is not None:
            diff[diff * free > 0] = 0.0
        z2 = diff * diff
        d2 = z2.sum(axis=1)
        i = int(d2.argmin())
        return float(np.sqrt(d2[i] / d)), i, np.sqrt(z2[i])

    def learn_one(
        self,
        x: Sequence[float],
        scale: Sequence[float],
        scored: tuple[float, int, FloatArray] | None = None,
        *,
        strict: bool = False,
        persistent: bool = True,
    ) -> None:
        """Refine the nearest prototype, or start a new one; ``scored`` reuses a ``score_one``.

        With ``strict`` (normal operation after warm-up) a reading far from every prototype is
        skipped unless it is ``persistent`` (not a passing transition), and only starts a new one if
        at least two signals differ (a change of operating state moves several signals); one signal
        wandering off alone is not learned, so a slow single-signal drift cannot walk the memory
        along with it."""
        if scored is None:
            score, i, z = self.score_one(x, scale)
        else:
            score, i, z = scored
        self.learned += 1
        refine = i >= 0 and score <= self.radius
        if i >= 0 and strict and not refine and (not persistent or int((z > self.radius).sum()) < 2):
            return  # a passing transition, or one signal wandering off: neither a state nor normal
        if refine:
            n = min(self.counts[i] + 1.0, _COUNT_CAP)
            self.counts[i] += 1.0
            self.centres[i] += (np.asarray(x, dtype=np.float64) - self.centres[i]) / n
            self.used[i] = self.learned
            return
        row = np.asarray(x, dtype=np.float64).reshape(1, -1)
        if self.size == 0:
            self.centres = self.centres.reshape(0, row.shape[1])
        if self.size >= self.max_prototypes:
            # Forget the state seen least (ties: longest ago); a rare stop seen once stays longer
            # than a passing transient seen once, because transients are refined less often.
            j = int(np.lexsort((self.used, self.counts))[0])
            self.centres[j] = row[0]
            self.counts[j] = 1.0
            self.used[j] = self.learned
            return
        self.centres = np.vstack([self.centres, row])
        self.counts = np.append(self.counts, 1.0)
        self.used = np.append(self.used, float(self.learned))

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "centres": array(self.centres),
            "counts": array(self.counts),
            "used": array(self.used),
            "learned": self.learned,
            "calibration": self.calibration.to_dict(),
        }

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], *, radius: float, max_prototypes: int, quantile: float, margin: float
    ) -> RegimeDetector:
        out = cls(radius, max_prototypes, quantile, margin)
        width = integer(d["width"])
        rows = len(d["centres"])
        if rows > max_prototypes:
            msg = f"{rows} prototypes is more than max_prototypes {max_prototypes}"
            raise ValueError(msg)
        out.centres = from_array(d["centres"], (rows, width))
        out.counts = from_array(d["counts"], (rows,))
        out.used = from_array(d["used"], (rows,))
        out.learned = integer(d["learned"])
        out.calibration = Quantile.from_dict(d["calibration"])
        return out
