"""``dropped-sensor``: one signal's value is missing for longer than normal operation explains.

A reading whose value is missing (``None``, or not finite on the wire) extends the signal's gap. A
gap that closes without an alarm is part of normal operation; the threshold is twice the longest
such gap and at least ``dropped_min_run`` readings.

>>> d = DroppedSensor(min_run=3)
>>> for v in (1.0, None, None, 2.0):  # a gap of two readings during the warm-up: normal
...     d.learn_one(v, warm=True)
>>> d.threshold  # twice the longest normal gap
4.0
>>> for _ in range(3):
...     d.learn_one(None, warm=False)
>>> d.score_one(None), d.predict_one(None)
(4.0, True)
"""

from __future__ import annotations

from typing import Any

from processors.anomaly.serial import dec, integer


class DroppedSensor:
    """Dropped-sensor detector of one signal: ``score_one`` is the length of the gap the value would
    extend (0 when present), ``threshold`` the gap length that is dropped."""

    __slots__ = ("gap", "max_gap", "min_run", "threshold")

    def __init__(self, *, min_run: int) -> None:
        self.min_run = min_run
        self.gap = 0  # missing readings in a row
        self.max_gap = 0  # the longest gap that closed in normal operation
        self.threshold = float(min_run)

    def score_one(self, value: float | None) -> float:
        return float(self.gap + 1) if value is None else 0.0

    def predict_one(self, value: float | None) -> bool:
        return self.score_one(value) >= self.threshold

    def ends_gap(self, value: float | None) -> bool:
        """True when ``value`` is the first present one after a gap (its change is not a step)."""
        return value is not None and self.gap > 0

    def learn_one(self, value: float | None, *, warm: bool) -> None:
        """Extend or close the gap; a closed gap shorter than the threshold (any gap while ``warm``,
        in the warm-up) is normal and may raise the threshold."""
        if value is None:
            self.gap += 1
            return
        ended, self.gap = self.gap, 0
        if ended and (warm or ended < self.threshold) and ended > self.max_gap:
            self.max_gap = ended
            self.threshold = float(max(self.min_run, 2 * ended))

    def to_dict(self) -> dict[str, Any]:
        return {"gap": self.gap, "max_gap": self.max_gap, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, min_run: int) -> DroppedSensor:
        s = cls(min_run=min_run)
        s.gap, s.max_gap = integer(d["gap"]), integer(d["max_gap"])
        s.threshold = dec(d["threshold"])
        return s
