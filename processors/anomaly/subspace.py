"""``multivariate-subspace``: a continuous multichannel process leaves the subspace of its normal
variation (Hotelling T², SPE/Q, and a per-signal shift statistic, smoothed to catch small persistent
changes).

Made for continuous processes (a chemical plant, a furnace, Tennessee Eastman): many coupled signals
and no discrete operating states, where ``multivariate-regime``'s prototypes either cover everything
or flag everything. Online and unsupervised: one reading at a time, no labels, memory O(p²) with
p = signals x (``lags`` + 1).

Calibration (the machine's warm-up: normal readings only) has two halves. On the first ``fit_after``
readings it accumulates the mean and covariance (Welford) and then fits the model: standardisation
(mean, standard deviation per feature) and PCA of the correlation matrix (``numpy.linalg.eigh``),
keeping the components that explain ``variance`` of it. On the next ``calibrate_for`` readings it
scores with that model (so the limits are out of sample, not flattered by the fit) and learns the
``quantile`` of each statistic; then the model is refitted on every calibration reading and frozen.

Statistics of a reading's standardised features z (``score_one``):

- **T²**: Hotelling's T² in the retained components (per component; a move *along* normal variation
  that is too large);
- **SPE** (Q): the squared residual off the subspace (per feature; a broken correlation);
- **peak**: the largest z² (one signal far out);
- **shift**: each signal's EWMA of z (span ``shift_span``) in units of that EWMA's own root mean
  square in calibration, the largest over signals (a small persistent shift of one signal that the
  controllers compensate elsewhere; a slow drift). Its limit gets ``shift_margin``: a warm-up of a
  day shows less slow wander than a plant has.

T², SPE and peak are smoothed by an EWMA (span ``stat_span``) before comparison (an increase in
variance, a small shift, is then seen). The score is the largest statistic / its limit: above 1 is
a hit. After calibration the centre may follow a slow legitimate drift (``learn_one(rate=...)``),
which the processor only does for readings far from any alarm.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> d = SubspaceDetector(2, fit_after=200, calibrate_for=200)
>>> for _ in range(400):
...     a = rng.normal()
...     x = [a + 0.1 * rng.normal(), a + 0.1 * rng.normal()]
...     _ = d.score_one(x)
...     d.learn_one(x)
>>> d.ready
True
>>> max(d.score_one([a, a]) for a in rng.normal(size=20)) < 1.0   # along the correlation: normal
True
>>> max(d.score_one([2.0, -2.0]) for _ in range(20)) > 1.0          # the correlation broke
True
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

from processors.anomaly.quantile import Quantile
from processors.anomaly.serial import FloatArray, array, from_array, integer

STATISTICS = ("t2", "spe", "peak", "shift")
_EPS = 1e-9


class SubspaceDetector:
    """PCA subspace monitoring of ``width`` signals (river-style ``score_one`` / ``learn_one`` on
    sequences of floats in a fixed signal order). ``score_one`` advances the smoothing filters, so
    call it once per reading, before ``learn_one``."""

    def __init__(
        self,
        width: int,
        *,
        fit_after: int,
        calibrate_for: int,
        lags: int = 0,
        variance: float = 0.9,
        quantile: float = 0.99,
        stat_span: float = 5.7,
        shift_span: float = 39.0,
        shift_margin: float = 1.5,
    ) -> None:
        self.width = width
        self.lags = lags
        self.fit_after = max(2, fit_after)
        self.calibrate_for = max(1, calibrate_for)
        self.variance = variance
        self.quantile = quantile
        self.shift_margin = shift_margin
        self._a_stat = 2.0 / (stat_span + 1)
        self._a_shift = 2.0 / (shift_span + 1)
        p = width * (lags + 1)
        self.history: list[list[float]] = []  # the last ``lags`` readings, newest first
        self.n = 0  # calibration readings learned
        self.mean: FloatArray = np.zeros(p)  # Welford accumulators over calibration
        self.m2: FloatArray = np.zeros((p, p))
        # The fitted model (empty until fitted).
        self.centre: FloatArray = np.zeros(p)
        self.sd: FloatArray = np.ones(p)
        self.components: FloatArray = np.zeros((p, 0))
        self.eigen: FloatArray = np.zeros(0)
        # Filters and calibration of the limits.
        self.smoothed: FloatArray = np.zeros(3)  # EWMA of t2, spe, peak (per feature or component)
        self.started = False
        self.shift: FloatArray = np.zeros(width)  # EWMA of each signal's z
        self.shift_ms: FloatArray = np.zeros(width)  # mean square of ``shift`` in calibration
        self.quantiles = [Quantile(quantile) for _ in STATISTICS]
        self.limits: FloatArray = np.full(len(STATISTICS), math.inf)
        self.ready = False
        self.last: FloatArray = np.zeros(len(STATISTICS))  # the statistics of the last reading
        self._f: FloatArray | None = None  # the features of the last reading scored
        self._z: FloatArray | None = None  # ...standardised

    @property
    def features(self) -> int:
        return self.width * (self.lags + 1)

    @property
    def fitted(self) -> bool:
        return self.n >= self.fit_after

    def _features(self, x: list[float]) -> FloatArray | None:
        """The reading with its ``lags`` predecessors (None until there are enough)."""
        if self.lags == 0:
            return np.asarray(x, dtype=np.float64)
        if len(self.history) < self.lags:
            self.history.insert(0, list(x))
            return None
        f = np.concatenate([np.asarray(x, dtype=np.float64), *(np.asarray(h) for h in self.history)])
        self.history = [list(x), *self.history[: self.lags - 1]]
        return f

    def score_one(self, x: list[float]) -> float:
        """Advance the filters with one reading; its score (largest statistic / its limit; above 1
        is abnormal; 0 until the model is fitted)."""
        f = self._features(x)
        self._f = f
        if f is None or not self.fitted:
            return 0.0
        z = (f - self.centre) / self.sd
        t = self.components.T @ z
        t2 = float(np.sum(t * t / self.eigen)) / max(1, len(self.eigen))
        r = z - self.components @ t
        spe = float(r @ r) / len(z)
        peak = float(np.max(z * z))
        cur = np.array([t2, spe, peak])
        self.smoothed = cur if not self.started else self.smoothed + self._a_stat * (cur - self.smoothed)
        self.started = True
        self.shift += self._a_shift * (z[: self.width] - self.shift)
        self._z = z
        rms = np.sqrt(self.shift_ms) if self.ready else np.ones(self.width)
        shift = float(np.max(np.abs(self.shift) / np.maximum(rms, _EPS)))
        self.last = np.array([*self.smoothed, shift])
        if not self.ready:
            return 0.0
        return float(np.max(self.last / self.limits))

    def calm(self) -> bool:
        """The last reading was unremarkable on its own (T², SPE and peak under their limits): it
        may teach the centre a slow drift. The shift statistic is left out on purpose: a drift the
        centre has not caught up with yet reads as a shift, and must not stop it catching up."""
        return bool(np.all(self.last[:3] < self.limits[:3]))

    def contributions(self) -> list[float]:
        """Per signal, how far its last reading and its smoothed shift are from normal (in standard
        deviations, the larger of the two): what an operator looks at first."""
        if not self.fitted or self._z is None:
            return [0.0] * self.width
        rms = np.sqrt(np.maximum(self.shift_ms, _EPS)) if self.ready else np.ones(self.width)
        z = np.abs(self._z[: self.width])
        return [float(v) for v in np.maximum(z, np.abs(self.shift) / rms)]

    def learn_one(self, x: list[float], *, rate: float = 0.0) -> None:
        """Learn the reading just scored. While calibrating: the mean and covariance, the fit, the
        limits. After: with ``rate`` > 0, the centre moves that fraction towards the reading (a slow
        legitimate drift; the caller gates it so an anomaly never teaches itself normal)."""
        f = self._f
        if f is None:
            return
        if self.ready:
            if rate > 0:
                self.centre += rate * (f - self.centre)
            return
        self.n += 1
        delta = f - self.mean
        self.mean += delta / self.n
        self.m2 += np.outer(delta, f - self.mean)
        if self.n == self.fit_after:
            self._fit()
        elif self.n > self.fit_after:
            k = self.n - self.fit_after
            self.shift_ms += (self.shift * self.shift - self.shift_ms) / k
            if 5 * k > self.calibrate_for:  # the shift's scale is known well enough to use it
                rms = np.sqrt(np.maximum(self.shift_ms, _EPS))
                self.last[-1] = float(np.max(np.abs(self.shift) / rms))
                for q, v in zip(self.quantiles, self.last, strict=True):
                    if math.isfinite(v):
                        q.update(float(v))
            if k >= self.calibrate_for:
                self._freeze()

    def _fit(self) -> None:
        cov = self.m2 / max(1, self.n - 1)
        sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
        floor = max(float(np.max(sd)) * 1e-6, _EPS)
        self.sd = np.where(sd > floor, sd, 1.0)  # a constant feature: any change is in its raw units
        self.centre = self.mean.copy()
        corr = cov / np.outer(self.sd, self.sd)
        eigen, vectors = np.linalg.eigh(corr)
        eigen, vectors = eigen[::-1], vectors[:, ::-1]
        total = float(np.sum(np.maximum(eigen, 0.0)))
        if total <= 0:
            k = 0
        else:
            k = int(np.searchsorted(np.cumsum(np.maximum(eigen, 0.0)) / total, self.variance) + 1)
            k = min(k, len(eigen))
        self.components = np.ascontiguousarray(vectors[:, :k])
        self.eigen = np.maximum(eigen[:k], 1e-6)

    def _freeze(self) -> None:
        """End calibration: limits from the out-of-sample quantiles (never below what independent
        gaussian noise would reach, see ``floors``), model refitted on everything."""
        got = [q.get() for q in self.quantiles]
        lim = np.array([float(g) if g is not None else math.inf for g in got])
        lim = np.maximum(lim, self.floors())
        lim[-1] *= self.shift_margin
        self.limits = lim
        self.shift_ms = np.maximum(self.shift_ms, _EPS)
        self._fit()
        self.ready = True
        self.m2 = np.zeros((0, 0))  # no longer needed: smaller snapshots

    def floors(self) -> FloatArray:
        """The least each limit may be: what independent gaussian features would exceed with
        probability (1 - ``quantile``) / 4 per statistic (T² and SPE per degree of freedom, the
        largest z² of all features, smoothed: chi² / dof, Wilson-Hilferty, with the degrees of
        freedom of the EWMA's newest reading, a conservative tail; the shift: a gaussian quantile).
        A short or unsteady calibration (a spike, then calm) must not leave a limit in the noise."""
        k = len(self.eigen)
        p = self.features
        tail = (1 - self.quantile) / len(STATISTICS)
        ew = 1 / self._a_stat
        z = NormalDist().inv_cdf(1 - tail)
        z_peak = NormalDist().inv_cdf(1 - tail / p)
        return np.array(
            [
                _chi2_per_dof(max(1, k) * ew, z),
                _chi2_per_dof((p - k) * ew, z) * (p - k) / p if p > k else _EPS,
                _chi2_per_dof(ew, z_peak),
                NormalDist().inv_cdf(1 - tail / 2),
            ]
        )

    # -- snapshots ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "history": [array(np.asarray(h, dtype=np.float64)) for h in self.history],
            "n": self.n,
            "mean": array(self.mean),
            "m2": array(self.m2),
            "centre": array(self.centre),
            "sd": array(self.sd),
            "components": array(self.components),
            "eigen": array(self.eigen),
            "smoothed": array(self.smoothed),
            "started": self.started,
            "shift": array(self.shift),
            "shift_ms": array(self.shift_ms),
            "quantiles": [q.to_dict() for q in self.quantiles],
            "limits": array(self.limits),
            "ready": self.ready,
            "last": array(self.last),
            "scored": None if self._f is None else array(self._f),
            "z": None if self._z is None else array(self._z),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], **settings: Any) -> SubspaceDetector:
        out = cls(integer(d["width"]), **settings)
        p, w = out.features, out.width
        out.history = [from_array(h, (w,)).tolist() for h in d["history"]]
        if len(out.history) > out.lags:
            msg = f"{len(out.history)} lagged readings, more than {out.lags}"
            raise ValueError(msg)
        out.n = integer(d["n"])
        out.mean = from_array(d["mean"], (p,))
        m2 = d["m2"]
        out.m2 = from_array(m2, (p, p)) if m2 else np.zeros((0, 0))
        out.centre, out.sd = from_array(d["centre"], (p,)), from_array(d["sd"], (p,))
        k = len(d["eigen"])
        out.components = from_array(d["components"], (p, k)) if k else np.zeros((p, 0))
        out.eigen = from_array(d["eigen"], (k,))
        out.smoothed = from_array(d["smoothed"], (3,))
        out.started = d["started"] is True
        out.shift, out.shift_ms = from_array(d["shift"], (w,)), from_array(d["shift_ms"], (w,))
        if len(d["quantiles"]) != len(STATISTICS):
            msg = f"expected {len(STATISTICS)} quantiles"
            raise ValueError(msg)
        out.quantiles = [Quantile.from_dict(q) for q in d["quantiles"]]
        out.limits = from_array(d["limits"], (len(STATISTICS),))
        out.ready = d["ready"] is True
        out.last = from_array(d["last"], (len(STATISTICS),))
        out._f = None if d["scored"] is None else from_array(d["scored"], (p,))
        out._z = None if d["z"] is None else from_array(d["z"], (p,))
        return out


def _chi2_per_dof(dof: float, z: float) -> float:
    """Wilson-Hilferty: the quantile of chi² with ``dof`` degrees of freedom, divided by ``dof``,
    at the gaussian quantile ``z``."""
    c = 2.0 / (9.0 * dof)
    return max(0.0, 1.0 - c + z * math.sqrt(c)) ** 3
