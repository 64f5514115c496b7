"""A running quantile (the P² algorithm) whose state is plain numbers, so a snapshot can carry it.

It computes exactly what ``river.stats.Quantile`` computes (river delegates to the Rust crate
watermill; the operations below are the same IEEE-754 operations in the same order, and a unit test
compares the two bit for bit), but its five markers are fields a snapshot can write and read back;
river's Rust object can only be pickled.

>>> q = Quantile(0.5)
>>> for x in (9.0, 7.0, 3.0, 2.0, 6.0, 1.0, 8.0, 5.0, 4.0):
...     q.update(x)
>>> q.get()
5.0
>>> Quantile.from_dict(q.to_dict()).get() == q.get()
True
"""

from __future__ import annotations

import math
from typing import Any

from processors.anomaly.serial import dec, float_list, floats, integer


class Quantile:
    """Running ``q`` quantile (P²: five markers, parabolic interpolation); ``get`` is None until the
    first ``update``. The caller feeds finite values only (NaN has no place among the markers)."""

    __slots__ = ("_desired", "_heights", "_markers", "_n", "_positions", "_sorted", "q")

    def __init__(self, q: float) -> None:
        if not 0 < q < 1:
            msg = f"quantile {q} is not between 0 and 1"
            raise ValueError(msg)
        self.q = q
        self._desired = [0.0, q / 2.0, q, (1.0 + q) / 2.0, 1.0]  # marker increments per value
        self._markers = [1.0, 1.0 + 2.0 * q, 1.0 + 4.0 * q, 3.0 + 2.0 * q, 5.0]  # desired positions
        self._positions = [1.0, 2.0, 3.0, 4.0, 5.0]
        self._heights = [0.0] * 5  # the first five values in arrival order, then the markers
        self._n = 0  # values in ``_heights`` until there are five
        self._sorted = False  # True from the sixth value on: the markers are in use

    def update(self, x: float) -> None:
        h = self._heights
        if self._n < 5:
            h[self._n] = x
            self._n += 1
            return
        if not self._sorted:
            self._sort_five()
            self._sorted = True
        # The cell k with h[k-1] <= x < h[k] (river's loop, unrolled: this runs once per value of
        # every envelope being calibrated); a value beyond the extremes widens them.
        if x < h[0]:
            h[0] = x
            k = 1
        elif h[0] <= x < h[1]:
            k = 1
        elif h[1] <= x < h[2]:
            k = 2
        elif h[2] <= x < h[3]:
            k = 3
        else:
            if not h[3] <= x < h[4]:
                h[4] = max(h[4], x)
            k = 4
        pos = self._positions
        if k == 1:
            pos[1] += 1.0
        if k <= 2:
            pos[2] += 1.0
        if k <= 3:
            pos[3] += 1.0
        pos[4] += 1.0
        m, step = self._markers, self._desired
        m[0] += step[0]
        m[1] += step[1]
        m[2] += step[2]
        m[3] += step[3]
        m[4] += step[4]
        self._adjust()

    def _adjust(self) -> None:
        """Move the middle markers towards their desired positions (parabolic, else linear)."""
        h, pos, m = self._heights, self._positions, self._markers
        for i in (1, 2, 3):
            n = pos[i]
            d = m[i] - n
            if (d >= 1.0 and pos[i + 1] - n > 1.0) or (d <= -1.0 and pos[i - 1] - n < -1.0):
                q = h[i]
                d = math.copysign(1.0, d)
                qp1, qm1 = h[i + 1], h[i - 1]
                np1, nm1 = pos[i + 1], pos[i - 1]
                outer = d / (np1 - nm1)
                inner_left = (n - nm1 + d) * (qp1 - q) / (np1 - n)
                inner_right = (np1 - n - d) * (q - qm1) / (n - nm1)
                qn = q + outer * (inner_left + inner_right)
                if qm1 < qn < qp1:
                    h[i] = qn
                else:
                    j = i + int(d)
                    h[i] = q + d * (h[j] - q) / (pos[j] - n)
                pos[i] = n + d

    def get(self) -> float | None:
        if self._sorted:
            return self._heights[2]
        if self._n == 0:
            return None
        first = sorted(self._heights[: self._n])
        n = float(self._n)
        return first[int(min(max(n - 1.0, 0.0), n * self.q))]

    def _sort_five(self) -> None:
        # The same compare-and-swap network as river's, so equal values (0.0 and -0.0) end up in
        # the same order.
        h = self._heights
        for a, b in ((0, 1), (3, 4), (0, 2), (1, 2), (0, 3), (2, 3), (1, 4), (1, 2), (3, 4)):
            if h[b] < h[a]:
                h[a], h[b] = h[b], h[a]

    def to_dict(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "n": self._n,
            "sorted": self._sorted,
            "heights": floats(self._heights),
            "positions": floats(self._positions),
            "markers": floats(self._markers),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Quantile:
        out = cls(dec(d["q"]))
        out._n = integer(d["n"])
        if not 0 <= out._n <= 5:
            msg = f"a quantile holds 0 to 5 first values, not {out._n}"
            raise ValueError(msg)
        out._sorted = d["sorted"] is True
        out._heights = float_list(d["heights"], 5)
        out._positions = float_list(d["positions"], 5)
        out._markers = float_list(d["markers"], 5)
        return out
