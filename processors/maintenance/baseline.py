"""The classic RUL baseline: ridge regression of the piecewise-linear target on the latest readings.

Each unit keeps its last ``window`` readings (default 1) of the chosen signals; the features are their means,
z-scored with the training statistics; the target is the RUL capped at ``cap`` (as for
``RULEstimator``). It is the peer the RUL model is compared with (``twin eval rul``,
``bench/rul_cmapss.py``): what an engineer would fit first.

>>> life = [[{"t": float(c), "wear": c / n} for c in range(n)] for n in (150, 200, 250)]
>>> base = RidgeRUL(cap=100, window=5).learn(life)
>>> round(base.predict_one("m", {"t": 0.0, "wear": 0.0}).rul)
100
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from processors.maintenance.rul import FloatArray, RULConfig, _pick_signals, _value


@dataclass(frozen=True, slots=True)
class PointEstimate:
    unit_id: str
    t: float
    rul: float


class RidgeRUL:
    """Ridge regression on the mean of each signal over the unit's last ``window`` readings (by default
    the last reading alone: a longer mean lags the accelerating wear near the end)."""

    def __init__(
        self,
        cap: float = 125.0,
        window: int = 1,
        alpha: float = 1.0,
        signals: Sequence[str] | None = None,
        time_key: str = "t",
    ) -> None:
        self.cap, self.window, self.alpha, self.time_key = cap, window, alpha, time_key
        self.signals: tuple[str, ...] = tuple(signals) if signals is not None else ()
        self._auto = signals is None
        self._mu: FloatArray = np.zeros(0)
        self._sd: FloatArray = np.ones(0)
        self._coef: FloatArray = np.zeros(0)
        self._intercept = 0.0
        self._units: dict[str, deque[list[float]]] = {}

    def learn(self, histories: Iterable[Sequence[Mapping[str, Any]]]) -> RidgeRUL:
        runs = [list(h) for h in histories if h]
        ys = []
        for h in runs:
            t = np.array([_value(r.get(self.time_key)) for r in h])
            t = np.arange(1.0, len(h) + 1.0) if np.isnan(t).all() else t
            ys.append(np.minimum(t[-1] - t, self.cap))
        y = np.concatenate(ys)
        if self._auto:
            self.signals = _pick_signals(runs, y, RULConfig(cap=self.cap, time_key=self.time_key))
        self._units = {}
        rows = []
        for i, h in enumerate(runs):
            uid = f"\0train{i}"
            rows += [self._features(uid, r) for r in h]
            self._units.pop(uid)
        x = np.array(rows)
        self._mu, sd = x.mean(0).astype(np.float64), x.std(0)
        self._sd = np.where(sd > 0, sd, 1.0)
        z = (x - self._mu) / self._sd
        a = z.T @ z + self.alpha * np.eye(z.shape[1])
        self._intercept = float(y.mean())
        self._coef = np.linalg.solve(a, z.T @ (y - self._intercept)).astype(np.float64)
        return self

    def _features(self, unit_id: str, reading: Mapping[str, Any]) -> list[float]:
        buf = self._units.get(unit_id)
        if buf is None:
            buf = self._units[unit_id] = deque(maxlen=self.window)
        prev = buf[-1] if buf else None
        row = []
        for i, s in enumerate(self.signals):
            v = _value(reading.get(s))
            row.append(v if math.isfinite(v) or prev is None else prev[i])
        buf.append(row)
        n = len(buf)
        return [sum(r[i] for r in buf) / n for i in range(len(self.signals))]

    def predict_one(self, unit_id: str, reading: Mapping[str, Any]) -> PointEstimate:
        x = np.array(self._features(unit_id, reading))
        rul = float(((x - self._mu) / self._sd) @ self._coef) + self._intercept
        t = reading.get(self.time_key)
        return PointEstimate(unit_id, math.nan if t is None else float(t), min(max(rul, 0.0), self.cap))
