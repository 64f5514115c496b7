"""The settling (lag) model: a slow signal still relaxing after a change of operating state is not a
fault for the multivariate detector.

A temperature cools along its thermal lag after a machine stops; a short idle only shows the start of
that curve, so a long break cools far past the idle baseline. Each context learns while it
calibrates how each signal *drifts* in it (``Drift``): the net sum of its changes between
consecutive readings in that state over the time observed. The sum telescopes, so its noise is that
of the visits' end points: a drift is a *relaxation direction* only when it exceeds 4 noise scales
x sqrt(2 x visits); its rate is net drift / seconds observed.

While scoring, ``Relaxation`` follows each signal since the change of state: it is *relaxing* while
it has moved in its direction, has not outrun ``relax_margin`` x rate x time (a first-order
relaxation never moves faster than it started) and has not turned back (its smoothed value stays
within a few noise scales of its extreme). A relaxing signal may lie beyond every known state in
its direction at no cost in the multivariate score. See docs/anomaly-detection.md.

>>> d = Drift()
>>> d.add_signal()
>>> for step in range(100):
...     d.learn_one(0, -0.1, 1.0, first_of_visit=step == 0)  # cools 0.1 per second
>>> direction, rate = d.relaxation(0, scale=0.05)
>>> direction, round(rate, 6)
(-1, 0.1)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from processors.anomaly.level import Envelope
from processors.anomaly.serial import (
    FloatArray,
    bool_list,
    float_list,
    floats,
    integer,
    opt_float_list,
    opt_floats,
)

FAST_ALPHA = 2.0 / (10 + 1)
"""Smoothing (EWMA, span 10 readings) of the value the settling model watches for a turn back."""
RELAX_TOL = 4.0
"""Noise scales of slack in the settling model: a turn back smaller than this, or a drift this much
ahead of the learned rate x time, is noise."""
APPROACH_STALL = 120
"""Readings an *approaching* signal may go without coming closer to the state's centre before its
allowance ends (a signal stuck short of its normal level is scored as is)."""


class Drift:
    """How each signal drifts while a machine is in one operating state, learned in calibration."""

    def __init__(self) -> None:
        self.net: list[float] = []  # sum of the signal's changes between consecutive readings
        self.seconds: list[float] = []  # time those changes spanned
        self.visits: list[int] = []  # visits of the state that contributed

    def add_signal(self) -> None:
        self.net.append(0.0)
        self.seconds.append(0.0)
        self.visits.append(0)

    def learn_one(self, i: int, change: float, dt_s: float, *, first_of_visit: bool) -> None:
        """One change of signal ``i`` between consecutive readings ``dt_s`` apart in this state."""
        self.net[i] += change
        self.seconds[i] += dt_s
        if first_of_visit:
            self.visits[i] += 1

    def relaxation(self, i: int, scale: float) -> tuple[int, float]:
        """(direction, rate per second) signal ``i`` learned to drift in while in this state; (0, 0)
        when its net drift is within what the noise of the visits' end points explains (``scale``:
        the signal's noise scale)."""
        net, seconds, visits = self.net[i], self.seconds[i], self.visits[i]
        if seconds <= 0 or abs(net) <= 4.0 * scale * math.sqrt(2.0 * max(visits, 1)):
            return 0, 0.0
        return (1 if net > 0 else -1), abs(net) / seconds

    def to_dict(self) -> dict[str, Any]:
        return {"net": floats(self.net), "seconds": floats(self.seconds), "visits": list(self.visits)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Drift:
        out = cls()
        out.visits = [integer(v) for v in d["visits"]]
        n = len(out.visits)
        out.net, out.seconds = float_list(d["net"], n), float_list(d["seconds"], n)
        return out


class Relaxation:
    """Per signal, since the last change of state: the value just before it, the smoothed value,
    its extreme in the relaxation direction, and whether it has kept to a relaxation."""

    def __init__(self, before: list[float | None]) -> None:
        n = len(before)
        self.v0 = list(before)
        self.fast: list[float | None] = [None] * n
        self.ext: list[float | None] = [None] * n
        self.ok = [True] * n
        # Approach: the side of the state's centre the signal comes from (-1, +1; 0: none or ended),
        # its closest smoothed distance to the centre so far, and readings since it last came closer.
        self.side = [0] * n
        self.near: list[float | None] = [None] * n
        self.stall = [0] * n
        self.started = False

    def add_signal(self, value: float | None) -> None:
        """A signal joined during the visit: it starts from its first value."""
        self.v0.append(value)
        self.fast.append(None)
        self.ext.append(None)
        self.ok.append(True)
        self.side.append(0)
        self.near.append(None)
        self.stall.append(0)

    def approach(
        self, values: list[float | None], envelope: Envelope | None, scale: list[float]
    ) -> FloatArray | None:
        """The approach allowance (after ``update``, same reading): a signal that started this visit
        more than ``RELAX_TOL`` noise scales to one side of the state's centre (the median of its
        raw ``envelope`` in this state; None when no allowance applies) and is still on that
        side, coming closer (its smoothed value has not moved away from its closest approach by
        more than ``RELAX_TOL`` noise scales, and came closer within the last ``APPROACH_STALL``
        readings), may differ from the known states *on that side* at no cost: a spindle spinning
        up, a temperature warming back after a long stop, whatever the state's calibration saw of
        such transitions. Crossing the centre, turning back or stalling ends it for the visit.
        Returns per signal the free direction (-1, +1; 0: none), or None when no signal has one."""
        if envelope is None:
            return None
        centre = envelope.med
        if not self.started:
            self.started = True
            for i, v0 in enumerate(self.v0):
                if v0 is not None and envelope.ready(i) and abs(v0 - centre[i]) > RELAX_TOL * scale[i]:
                    self.side[i] = 1 if v0 > centre[i] else -1
        if not any(self.side):
            return None
        out: FloatArray | None = None
        for i, v in enumerate(values):
            side = self.side[i]
            fast = self.fast[i]
            if side == 0 or v is None or fast is None:
                continue
            dist = side * (fast - centre[i])
            near = self.near[i]
            if near is None or dist < near:
                self.near[i], self.stall[i] = dist, 0
            else:
                self.stall[i] += 1
            near = self.near[i]
            assert near is not None
            crossed = side * (v - centre[i]) <= 0
            if crossed or dist - near > RELAX_TOL * scale[i] or self.stall[i] > APPROACH_STALL:
                self.side[i] = 0  # crossed the centre, turned back or stalled: score as is
                continue
            if out is None:
                out = np.zeros(len(values))
            out[i] = side
        return out

    def update(
        self,
        values: list[float | None],
        drift: Drift | None,
        scale: list[float],
        age_s: float,
        margin: float,
    ) -> FloatArray | None:
        """Follow one reading (``age_s`` seconds after the change; ``drift``: the state's learned
        drift, None when no allowance applies). Returns per signal the direction (-1, +1; 0: none)
        in which the multivariate detector lets it differ from the known states at no cost, or None
        when no signal is relaxing. A turn back or an outrun ends a signal's allowance for the rest
        of the visit."""
        out: FloatArray | None = None
        for i, v in enumerate(values):
            if v is None:
                continue
            fast = self.fast[i]
            fast = v if fast is None else fast + (v - fast) * FAST_ALPHA
            self.fast[i] = fast
            if drift is None or not self.ok[i]:
                continue
            direction, rate = drift.relaxation(i, scale[i])
            if direction == 0:
                continue
            ext = self.ext[i]
            ext = fast if ext is None else (max(ext, fast) if direction > 0 else min(ext, fast))
            self.ext[i] = ext
            v0 = self.v0[i]
            if v0 is None:
                v0 = self.v0[i] = v
            tol = RELAX_TOL * scale[i]
            if direction * (ext - fast) > tol or direction * (v - v0) > margin * rate * age_s + tol:
                self.ok[i] = False  # turned back, or faster than a relaxation: score as is
                continue
            if direction * (v - v0) > 0:  # it has moved that way since the change
                if out is None:
                    out = np.zeros(len(values))
                out[i] = direction
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "v0": opt_floats(self.v0),
            "fast": opt_floats(self.fast),
            "ext": opt_floats(self.ext),
            "ok": list(self.ok),
            "side": list(self.side),
            "near": opt_floats(self.near),
            "stall": list(self.stall),
            "started": self.started,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], n: int) -> Relaxation:
        out = cls(opt_float_list(d["v0"], n))
        out.fast, out.ext = opt_float_list(d["fast"], n), opt_float_list(d["ext"], n)
        out.ok = bool_list(d["ok"], n)
        if "side" not in d:  # written before the approach allowance: none for the rest of the visit
            out.started = True
            return out
        out.side = [integer(x) for x in d["side"]]
        out.near = opt_float_list(d["near"], n)
        out.stall = [integer(x) for x in d["stall"]]
        out.started = d["started"] is True
        if len(out.side) != n or len(out.stall) != n or not all(x in (-1, 0, 1) for x in out.side):
            msg = f"expected {n} approach sides in -1, 0, 1 and {n} stall counts"
            raise ValueError(msg)
        return out
