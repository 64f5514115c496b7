"""What is normal for one machine in one operating state (its *context*).

A machine reports its operating state (RUNNING, IDLE, DOWN, ...) on ``factory.state``. Signals
that are normal in one state are abnormal in another (a spindle at 0 rpm, a spray booth's air
pressure rising when it idles), so each context learns its own baseline:

- the multivariate prototypes (``RegimeDetector``) and the calibrated quantile of their score;
- per signal, two *envelopes* (``1 - quantile``, median and ``quantile`` quantiles): one of its raw
  value, one of its smoothed value once the state has lasted ``level_span`` readings (so it
  describes the state, not the transition into it). Each freezes once calibrated: a tail quantile
  that kept learning would let a slow drift raise its own threshold ahead of itself.

A context calibrates on its first ``warmup_events`` readings (and not before the machine's warm-up
ends); until then its regime and level detectors learn and score nothing. With no state events a
machine has one context.

>>> e = Envelope(q=0.99, need=40)
>>> e.add_signal()
>>> for i in range(40):
...     e.learn(0, 10.0 + (i % 5) * 0.1)
>>> e.ready(0), e.lo[0] <= 10.2 <= e.hi[0]
(True, True)
"""

from __future__ import annotations

import math

from river import stats

from processors.anomaly.config import AnomalyConfig
from processors.anomaly.regime import RegimeDetector


class Envelope:
    """Per signal: the ``1 - q``, median and ``q`` quantiles of its values in one context, learned
    until ``need`` values were seen and then frozen; an uncalibrated signal's envelope is open."""

    def __init__(self, q: float, need: int) -> None:
        self._q = q
        self._need = need
        self._quantiles: list[tuple[stats.Quantile, stats.Quantile, stats.Quantile] | None] = []
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
            qs = self._quantiles[i] = (
                stats.Quantile(1 - self._q), stats.Quantile(0.5), stats.Quantile(self._q),
            )  # fmt: skip
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
        self._quantiles[i] = None  # streaming quantiles are no longer needed: smaller snapshots


class Context:
    """Baselines of one operating state of one machine; see the module docstring."""

    def __init__(self, config: AnomalyConfig) -> None:
        self.regime = RegimeDetector(config.prototype_radius, config.max_prototypes)
        self.regime_q = stats.Quantile(config.quantile)
        self.regime_n = 0  # scores the regime quantile has seen
        self.n = 0  # readings learned while calibrating
        self.calibrated = False
        self.raw = Envelope(config.quantile, 2**62)  # frozen with the context (``freeze``)
        self.smooth = Envelope(config.quantile, config.warmup_events)
        self.entries = 0  # times the machine entered this context
        self.settle_s: list[float] = []  # how long after entering it all signals were in envelope
        # Settling (lag) model, learned while calibrating: per signal, its net drift (sum of its
        # changes between consecutive readings in this context, transition jumps clipped) over the
        # time it was observed, and the visits that contributed.
        self.drift: list[float] = []
        self.drift_s: list[float] = []
        self.drift_visits: list[int] = []

    def add_signal(self, first_value: float) -> None:
        """A signal joined the machine; until it is calibrated here its envelopes are open."""
        self.regime.add_signal(first_value)
        self.drift.append(0.0)
        self.drift_s.append(0.0)
        self.drift_visits.append(0)
        self.raw.add_signal()
        self.smooth.add_signal()

    def freeze(self) -> None:
        """End calibration of the context: raw envelopes are fixed (signals never seen stay
        open); smoothed envelopes keep learning until each has seen enough settled readings."""
        for i in range(len(self.raw.hi)):
            self.raw.freeze(i)
        self.calibrated = True

    def learn_drift(self, i: int, change: float, dt_s: float, first_of_visit: bool) -> None:
        """One change of signal ``i`` between consecutive readings ``dt_s`` apart in this context."""
        self.drift[i] += change
        self.drift_s[i] += dt_s
        if first_of_visit:
            self.drift_visits[i] += 1

    def relaxation(self, i: int, scale: float) -> tuple[int, float]:
        """(direction, rate per second) signal ``i`` learned to drift in while in this state; (0, 0)
        when its net drift is within what the noise of the visits' end points explains (``scale``:
        the signal's noise scale)."""
        net, seconds, visits = self.drift[i], self.drift_s[i], self.drift_visits[i]
        if seconds <= 0 or abs(net) <= 4.0 * scale * math.sqrt(2.0 * max(visits, 1)):
            return 0, 0.0
        return (1 if net > 0 else -1), abs(net) / seconds

    def regime_threshold(self, radius: float, margin: float) -> float:
        q = self.regime_q.get() if self.regime_n else None
        return max(radius, q if q is not None else 0.0) * margin
