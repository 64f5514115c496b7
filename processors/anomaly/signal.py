"""One signal (channel) of a machine: its name and unit, its last value and its noise scale.

Every detector measures in noise units: the noise scale is the mean absolute change between
consecutive readings, learned online over ``noise_span`` readings. A change larger than a few noise
scales is a state transition, not noise, and is clipped so stopping a machine does not make its
signals look noisy. Exact repeats are skipped (quantised or resting signals repeat; their noise is in
the changes).

>>> s = Signal("temp", "degC", span=100)
>>> for v in (20.0, 20.2, 20.0, 20.2):
...     s.learn_one(v)
>>> round(s.scale(), 3), s.last
(0.2, 20.2)
"""

from __future__ import annotations

from typing import Any

from processors.anomaly.serial import dec, dec_opt, enc, enc_opt, integer

_CLIP = 4.0
"""A change larger than this many noise scales is a state transition, not noise: it is clipped
when the noise scale learns, so stopping a machine does not make its signals look noisy."""


class Signal:
    """Identity, last value and noise scale of one channel."""

    __slots__ = ("last", "n_noise", "name", "noise", "span", "unit")

    def __init__(self, name: str, unit: str, *, span: int) -> None:
        self.name = name
        self.unit = unit
        self.span = span  # readings the noise scale averages over
        self.last: float | None = None  # the last value that was not missing
        self.noise = 0.0
        self.n_noise = 0

    def scale(self) -> float:
        """Noise scale, floored so a constant signal (so far) still gives finite, huge z-scores
        instead of NaN when it finally moves."""
        floor = 1e-6 + 1e-4 * abs(self.last or 0.0)
        return self.noise if self.noise > floor else floor

    def learn_one(self, value: float) -> None:
        """Learn one present value (after every detector has scored it)."""
        previous = self.last
        self.last = value
        if previous is None:
            return
        change = abs(value - previous)
        if change == 0.0:
            return
        if self.n_noise == 0:
            self.noise = change
        else:
            clipped = min(change, _CLIP * self.noise)
            self.noise += (clipped - self.noise) / min(self.n_noise + 1, self.span)
        self.n_noise += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "last": enc_opt(self.last),
            "noise": enc(self.noise),
            "n_noise": self.n_noise,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, span: int) -> Signal:
        s = cls(str(d["name"]), str(d["unit"]), span=span)
        s.last = dec_opt(d["last"])
        s.noise = dec(d["noise"])
        s.n_noise = integer(d["n_noise"])
        return s
