"""``stuck-sensor``: one signal repeats the exact same value for longer than its history makes likely.

The detector learns how often the signal repeats its previous value exactly (quantised signals do)
and flags a run of identical readings once a run that long would happen with probability
``stuck_alpha`` (and never before ``stuck_min_run`` readings). Values at the signal's rails (the
lowest or highest it ever reported, e.g. 0 rpm when a spindle stops) rest legitimately: they neither
count nor teach the repeat rate.

>>> d = StuckSensor(min_run=10, alpha=1e-6)
>>> for i in range(200):
...     d.learn_one(float(i % 7))  # never repeats; 0 and 6 are its rails
>>> flags = []
>>> for _ in range(12):
...     flags.append(d.predict_one(4.0))
...     d.learn_one(4.0, flagged=flags[-1])
>>> flags.index(True) + 1  # the tenth identical reading in a row is stuck
10
"""

from __future__ import annotations

import math
from typing import Any

from processors.anomaly.serial import dec, dec_opt, enc, enc_opt, integer


class StuckSensor:
    """Stuck-sensor detector of one signal: ``score_one`` is the run of identical readings the
    value would extend (0 when missing or on a rail), ``threshold`` the run length that is stuck."""

    __slots__ = ("alpha", "hi", "last", "lo", "min_run", "repeats", "run", "steps", "threshold")

    def __init__(self, *, min_run: int, alpha: float) -> None:
        self.min_run = min_run
        self.alpha = alpha
        self.last: float | None = None
        self.run = 0  # identical readings in a row, the last one included
        self.lo = math.inf  # rails: the lowest and highest value ever seen
        self.hi = -math.inf
        self.repeats = 0  # exact repeats among ``steps`` learned off-rail steps
        self.steps = 0
        self.threshold = float(min_run)

    def _run(self, value: float) -> int:
        return self.run + 1 if value == self.last else 1

    def score_one(self, value: float | None) -> float:
        if value is None or value <= self.lo or value >= self.hi:
            return 0.0
        run = self._run(value)
        return float(run) if run >= 2 else 0.0

    def predict_one(self, value: float | None) -> bool:
        return self.score_one(value) >= self.threshold

    def learn_one(self, value: float | None, *, flagged: bool = False) -> None:
        """Extend the run; learn the repeat rate unless the reading was ``flagged`` stuck (a stuck
        sensor must not teach that long runs are normal) and widen the rails."""
        if value is None:
            return
        previous, lo, hi = self.last, self.lo, self.hi
        self.run = self.run + 1 if value == previous else 1
        # Steps between two off-rail values teach the repeat rate (``lo < v < hi``: not on a rail).
        if not flagged and previous is not None and lo < value < hi and lo < previous < hi:
            self.steps += 1
            if value == previous:
                self.repeats += 1
            p = (self.repeats + 1) / (self.steps + 2)  # Laplace: never 0 or 1
            self.threshold = max(float(self.min_run), math.log(self.alpha) / math.log(p))
        if value < lo:
            self.lo = value
        if value > hi:
            self.hi = value
        self.last = value

    def to_dict(self) -> dict[str, Any]:
        return {
            "last": enc_opt(self.last),
            "run": self.run,
            "lo": enc(self.lo),
            "hi": enc(self.hi),
            "repeats": self.repeats,
            "steps": self.steps,
            "threshold": enc(self.threshold),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, min_run: int, alpha: float) -> StuckSensor:
        s = cls(min_run=min_run, alpha=alpha)
        s.last = dec_opt(d["last"])
        s.run = integer(d["run"])
        s.lo, s.hi = dec(d["lo"]), dec(d["hi"])
        s.repeats, s.steps = integer(d["repeats"]), integer(d["steps"])
        s.threshold = dec(d["threshold"])
        return s
