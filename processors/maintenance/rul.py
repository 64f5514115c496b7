"""Remaining useful life (RUL) of each unit, online, with an uncertainty band and its driving signals.

``RULEstimator.learn`` fits on run-to-failure histories: each history is the readings of one unit in
time order, the last one at failure; a reading is a mapping of signal name to value, plus the time
(``config.time_key``, default ``"t"``; without it a reading's time is its 1-based position). The
target is the time left to the last reading, capped at ``config.cap`` (a new unit's RUL is not
observable from its signals, only that it is "healthy"; 125 cycles on C-MAPSS, as in the literature).

``predict_one(unit_id, reading)`` updates that unit's features (exponentially weighted level and
trend per signal, ``features.Features``, a fixed few numbers per signal however long the unit runs)
and returns an ``Estimate``: the RUL, a band that held the capped RUL of held-out training units with
the configured coverage, and, computed when asked, the signals that move the estimate most.

The model is an ensemble of small MLPs (``mlp``), one per cross-validation fold: each member never
saw the units of its fold, and its errors on them calibrate the band (split by predicted RUL, since
errors shrink as failure nears). Saved as plain JSON (``to_dict``/``from_dict``), never pickle.

>>> import math
>>> life = [[{"t": float(c), "wear": math.exp(c / 40)} for c in range(n)] for n in (150, 180, 210, 240)]
>>> est = RULEstimator(RULConfig(cap=100, spans=(5, 20), epochs=20, folds=2)).learn(life)
>>> for c in range(120):
...     e = est.predict_one("m1", {"t": float(c), "wear": math.exp(c / 40)})
>>> e.lower <= e.rul <= e.upper and e.contributors[0][0] in ("wear", "age")
True
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from processors.base import load_snapshot
from processors.maintenance.features import AGE, Features, TimeCache, feature_signal_index
from processors.maintenance.mlp import Stack, TrainSettings, train_stack
from twin.errors import SnapshotError

FloatArray = npt.NDArray[np.float64]
Reading = Mapping[str, Any]
History = Sequence[Reading]

MODEL_FORMAT = "rul-mlp"
MODEL_VERSION = 1
"""Version of the saved model's layout; ``from_dict`` refuses any other (relearn instead)."""


class RULConfig(BaseModel):
    """How the estimator picks signals, builds features, trains and calibrates. Times (``cap``,
    ``spans``) are in the unit of the histories' time axis: cycles for C-MAPSS, seconds for the
    simulator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cap: float = Field(125.0, gt=0)
    """RUL target ceiling: earlier in life, the target is this (piecewise-linear degradation)."""
    time_key: str = "t"
    """Reading key holding the time; a reading without it is at its 1-based position."""
    signals: tuple[str, ...] | None = None
    """Signals to use; None picks them from the training histories (see ``min_correlation``)."""
    min_correlation: float = Field(0.2, ge=0, lt=1)
    """Automatic choice: keep a numeric signal whose absolute correlation with the capped RUL over
    all training readings is at least this (constant and unrelated sensors fall out)."""
    spans: tuple[float, ...] = (5.0, 15.0, 40.0)
    """Time constants of the level and trend features: short follows the present, long the baseline."""
    use_age: bool = True
    """Feed the time since the unit's first reading (its age, as far as we have seen it)."""
    folds: int = Field(5, ge=2)
    """Cross-validation folds over units: one ensemble member per fold, trained without it."""
    hidden: tuple[int, int] = (32, 16)
    epochs: int = Field(120, ge=1)
    batch: int = Field(256, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-3, ge=0)
    seed: int = 0
    coverage: float = Field(0.9, gt=0, lt=1)
    """Share of held-out training readings whose capped RUL the band must contain."""
    band_bins: int = Field(5, ge=1)
    """Predicted-RUL bins (equal counts) with their own band width."""
    top_signals: int = Field(3, ge=1)
    """Contributors listed in an estimate."""

    def digest(self) -> str:
        """Short hash of these settings: part of the model version."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:8]


class Estimate:
    """One RUL estimate of a unit after its latest reading.

    ``rul`` is the ensemble mean (clipped to [0, cap]); ``[lower, upper]`` the band of ``coverage``
    for the capped RUL (an ``upper`` at the cap means "at least this"); ``spread`` the members'
    standard deviation; ``stale`` is true when the reading was older than the unit's latest and
    changed nothing (``t`` and ``readings`` are then the unit's latest). ``contributors`` (computed
    on first access, so a stream that never looks pays nothing): the ``top_signals`` signals with
    the largest gradient x deviation-from-healthy attribution, in RUL units, as
    ``(signal, contribution)``, most influential first; a negative contribution shortens the life.
    """

    __slots__ = (
        "_contributors",
        "_explain",
        "lower",
        "model_version",
        "readings",
        "rul",
        "spread",
        "stale",
        "t",
        "unit_id",
        "upper",
    )

    def __init__(
        self,
        unit_id: str,
        t: float,
        rul: float,
        lower: float,
        upper: float,
        spread: float,
        readings: int,
        model_version: str,
        explain: Callable[[], list[tuple[str, float]]],
        stale: bool = False,
    ) -> None:
        self.unit_id, self.t, self.rul, self.lower, self.upper = unit_id, t, rul, lower, upper
        self.spread, self.readings, self.model_version = spread, readings, model_version
        self.stale = stale
        self._explain: Callable[[], list[tuple[str, float]]] | None = explain
        self._contributors: list[tuple[str, float]] | None = None

    @property
    def contributors(self) -> list[tuple[str, float]]:
        if self._contributors is None:
            assert self._explain is not None
            self._contributors = self._explain()
            self._explain = None
        return self._contributors

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit_id": self.unit_id,
            "t": self.t,
            "rul": self.rul,
            "lower": self.lower,
            "upper": self.upper,
            "spread": self.spread,
            "stale": self.stale,
            "readings": self.readings,
            "model_version": self.model_version,
            "contributors": [{"signal": s, "contribution": c} for s, c in self.contributors],
        }

    def __repr__(self) -> str:
        band = f"[{self.lower:.1f}, {self.upper:.1f}]"
        return f"Estimate({self.unit_id!r}, t={self.t:g}, rul={self.rul:.1f} {band})"


class RULEstimator:
    """Online RUL per unit (see the module docstring). ``normalise``, when given, maps each reading
    before anything else sees it, in training and in prediction (an operating-condition
    normalisation); it is code, so it is not saved with the model: pass it again after loading.
    ``max_units`` bounds the unit states kept (the least recently seen unit is forgotten first)."""

    def __init__(
        self,
        config: RULConfig | None = None,
        *,
        normalise: Callable[[Reading], Reading] | None = None,
        max_units: int = 100_000,
    ) -> None:
        self.config = config or RULConfig()
        self._cap, self._time_key = self.config.cap, self.config.time_key  # read once per estimate
        self.normalise = normalise
        self.max_units = max_units
        self.signals: tuple[str, ...] = ()
        self._fill = np.zeros(0)
        self._mu = np.zeros(0)
        self._inv_sd = np.zeros(0)
        self._ref = np.zeros(0)
        self._stack: Stack | None = None
        self._fast: Stack | None = None  # the stack with the standardisation folded in (``_index``)
        self._edges: list[float] = []
        self._lo: list[float] = []
        self._hi: list[float] = []
        self._group = np.zeros(0, dtype=np.int64)
        self._names: tuple[str, ...] = ()
        self._units: dict[str, Features] = {}
        self._times_cache: TimeCache = {}  # shared by the units' ``Features``
        self.trained_on: dict[str, int | float] = {}
        """What ``learn`` saw: histories, readings, and the mean life (first to last reading's time)."""
        self.model_version = ""

    # -- training -----------------------------------------------------------------------------------
    def learn(self, histories: Iterable[History]) -> RULEstimator:
        """Fit on run-to-failure histories (each ends at failure); forgets every unit's state."""
        cfg = self.config
        runs = [[self._norm(r) for r in h] for h in histories]
        runs = [h for h in runs if h]
        if len(runs) < cfg.folds:
            msg = f"{len(runs)} non-empty histories: need at least {cfg.folds} (one per fold)"
            raise ValueError(msg)
        times = [self._times(h, i) for i, h in enumerate(runs)]
        targets = [np.minimum(t[-1] - t, cfg.cap) for t in times]
        y = np.concatenate(targets)
        self.signals = cfg.signals if cfg.signals is not None else _pick_signals(runs, y, cfg)
        values = np.array([[_value(r.get(s)) for s in self.signals] for h in runs for r in h])
        seen = ~np.isnan(values).all(axis=0)
        if not seen.all():
            missing = ", ".join(s for s, ok in zip(self.signals, seen, strict=True) if not ok)
            msg = f"no numeric value of signal(s) {missing} in any training reading"
            raise ValueError(msg)
        self._fill = np.nanmean(values, axis=0)  # a unit's value of a signal before its first one
        x = np.concatenate([self._table(h, t) for h, t in zip(runs, times, strict=True)])
        self._mu = x.mean(0)
        sd = x.std(0)
        self._inv_sd = np.where(
            sd > 1e-12 * np.maximum(1.0, np.abs(self._mu)), 1.0 / np.where(sd > 0, sd, 1.0), 0.0
        )
        if not cfg.use_age:
            self._inv_sd[-1] = 0.0
        z = (x - self._mu) * self._inv_sd
        # Folds of units, members trained without their fold.
        rng = np.random.default_rng(cfg.seed)
        fold_of_run = np.empty(len(runs), dtype=np.int64)
        fold_of_run[rng.permutation(len(runs))] = np.arange(len(runs)) % cfg.folds
        fold = np.repeat(fold_of_run, [len(h) for h in runs])
        rows = np.stack([fold != k for k in range(cfg.folds)], axis=1)
        settings = TrainSettings(
            hidden=cfg.hidden, epochs=cfg.epochs, batch=cfg.batch, lr=cfg.learning_rate,
            weight_decay=cfg.weight_decay, seed=cfg.seed,
        )  # fmt: skip
        self._stack = train_stack(z, y / cfg.cap, rows, settings)
        held_out = self._stack.predict(z)[np.arange(len(y)), fold] * cfg.cap
        self._calibrate(np.clip(held_out, 0.0, cfg.cap), y)
        healthy = y >= cfg.cap
        self._ref = z[healthy].mean(0) if healthy.any() else z[y >= np.quantile(y, 0.9)].mean(0)
        self._index()
        lives = [float(t[-1] - t[0]) for t in times]
        self.trained_on = {"histories": len(runs), "readings": len(y), "mean_life": sum(lives) / len(lives)}
        self.model_version = self._version()
        self._units = {}
        return self

    def _calibrate(self, predicted: FloatArray, truth: FloatArray) -> None:
        """Band per predicted-RUL bin: the residual quantiles of held-out predictions."""
        cfg = self.config
        alpha = (1.0 - cfg.coverage) / 2.0
        inner = np.linspace(0, 1, cfg.band_bins + 1)[1:-1]
        edges = sorted({float(q) for q in np.quantile(predicted, inner)}) if inner.size else []
        which = np.searchsorted(np.array(edges), predicted, side="right")
        residual = truth - predicted
        lo, hi = [], []
        for b in range(len(edges) + 1):
            r = residual[which == b]
            lo.append(float(np.quantile(r, alpha)) if r.size else float(np.quantile(residual, alpha)))
            hi.append(
                float(np.quantile(r, 1.0 - alpha)) if r.size else float(np.quantile(residual, 1.0 - alpha))
            )
        # The band always holds the estimate itself (a bin whose errors all lie on one side widens).
        self._edges, self._lo, self._hi = edges, [min(v, 0.0) for v in lo], [max(v, 0.0) for v in hi]

    def _table(self, history: History, times: FloatArray) -> FloatArray:
        f = Features(self.signals, self.config.spans, self._fill, self._times_cache)
        return np.array([f.update(float(t), r) for t, r in zip(times, history, strict=True)])

    def _times(self, history: History, index: int) -> FloatArray:
        key = self.config.time_key
        t = np.array([_value(r.get(key)) for r in history])
        missing = np.isnan(t)
        if missing.all():
            return np.arange(1.0, len(history) + 1.0)
        if missing.any():
            msg = f"history {index}: {int(missing.sum())} reading(s) without a time ({key!r})"
            raise ValueError(msg)
        if (np.diff(t) < 0).any():
            msg = f"history {index}: time ({key!r}) goes back; a history is in time order"
            raise ValueError(msg)
        return t

    def _norm(self, reading: Reading) -> Reading:
        return reading if self.normalise is None else self.normalise(reading)

    def _index(self) -> None:
        assert self._stack is not None
        self._fast = self._stack.folded(self._mu, self._inv_sd).single()
        self._group = feature_signal_index(self.signals, self.config.spans)
        self._names = (*self.signals, AGE)

    # -- prediction ---------------------------------------------------------------------------------
    def predict_one(self, unit_id: str, reading: Reading) -> Estimate:
        """Take the unit's next reading and estimate its RUL. Readings of a unit come in time order;
        one older than the unit's latest changes nothing (see ``Estimate.stale``): after a repair or
        a replacement, ``forget`` the unit so that its new life starts afresh."""
        stack, fast = self._stack, self._fast
        if stack is None or fast is None:
            msg = "the RUL estimator has not learned yet: call learn() or load a model"
            raise RuntimeError(msg)
        f, t, x, stale = self._take(unit_id, reading)
        out, a1, a2 = fast.forward(x)
        outs = out.tolist()
        m = len(outs)
        mean = sum(outs) / m
        cap = self._cap
        rul = min(max(mean * cap, 0.0), cap)
        b = bisect.bisect_right(self._edges, rul)
        return Estimate(
            unit_id, t, rul, max(rul + self._lo[b], 0.0), min(rul + self._hi[b], cap),
            math.sqrt(sum([(o - mean) ** 2 for o in outs]) / m) * cap, f.readings, self.model_version,
            lambda: self._explain(stack, x, a1, a2), stale,
        )  # fmt: skip

    def observe_one(self, unit_id: str, reading: Reading) -> bool:
        """Take the unit's next reading as ``predict_one`` does, without estimating (the features'
        update only, a fraction of the cost): for a caller that needs an estimate only now and then.
        False when the reading was stale (older than the unit's latest) and changed nothing."""
        if self._stack is None:
            msg = "the RUL estimator has not learned yet: call learn() or load a model"
            raise RuntimeError(msg)
        return not self._take(unit_id, reading)[3]

    def _take(self, unit_id: str, reading: Reading) -> tuple[Features, float, FloatArray, bool]:
        """The unit's features after ``reading``: (its state, time, features, stale)."""
        if self.normalise is not None:
            reading = self.normalise(reading)
        units = self._units
        f = units.pop(unit_id, None)  # re-inserted last: the dict's order is least recently seen first
        if f is None:
            f = Features(self.signals, self.config.spans, self._fill, self._times_cache)
            if len(units) >= self.max_units:
                del units[next(iter(units))]
        units[unit_id] = f
        t = reading.get(self._time_key)
        t = float(f.readings + 1) if t is None else float(t)
        stale = t < f.last_time  # False before the first reading (NaN)
        if stale:
            # At-least-once delivery repeats readings, and a late one cannot be inserted into the
            # running sums: it leaves the state alone and gets the unit's current estimate.
            return f, f.last_time, f.current(), True
        return f, t, f.update(t, reading), False

    def _explain(
        self, stack: Stack, x: FloatArray, a1: FloatArray, a2: FloatArray
    ) -> list[tuple[str, float]]:
        # First-order attribution: gradient x (features - healthy reference), summed per signal.
        z = (x - self._mu) * self._inv_sd
        g = stack.gradient(a1, a2) * (z - self._ref) * self.config.cap
        per = np.bincount(self._group, weights=g, minlength=len(self._names))
        order = np.argsort(-np.abs(per), kind="stable")[: self.config.top_signals]
        return [(self._names[i], float(per[i])) for i in order]

    def forget(self, unit_id: str) -> None:
        """Drop a unit's state (after a repair or replacement its life starts again)."""
        self._units.pop(unit_id, None)

    def unit_state(self, unit_id: str) -> dict[str, Any] | None:
        """The unit's feature state as plain JSON values (None for a unit without one), for a
        processor's snapshot; ``restore_unit`` continues from it under the same model."""
        f = self._units.get(unit_id)
        return None if f is None else f.to_dict()

    def restore_unit(self, unit_id: str, state: Mapping[str, Any]) -> None:
        """Continue a unit from ``unit_state``; ``SnapshotError`` when it does not fit this model."""
        if self._stack is None:
            msg = "the RUL estimator has not learned yet: call learn() or load a model"
            raise RuntimeError(msg)
        f = Features(self.signals, self.config.spans, self._fill, self._times_cache)
        try:
            f.load(state)
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"RUL unit state of {unit_id!r} cannot be restored: {type(exc).__name__}: {exc}"
            raise SnapshotError(msg) from None
        self._units.pop(unit_id, None)
        if len(self._units) >= self.max_units:
            del self._units[next(iter(self._units))]
        self._units[unit_id] = f

    @property
    def units(self) -> int:
        """Units with state."""
        return len(self._units)

    # -- saving -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The learned model as plain JSON values (format, version, config and its digest)."""
        if self._stack is None:
            msg = "nothing to save: the RUL estimator has not learned yet"
            raise RuntimeError(msg)
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "model_version": self.model_version,
            "config": self.config.model_dump(mode="json"),
            "config_digest": self.config.digest(),
            **self._body(),
        }

    def _body(self) -> dict[str, Any]:
        assert self._stack is not None
        return {
            "signals": list(self.signals),
            "fill": self._fill.tolist(),
            "mu": self._mu.tolist(),
            "inv_sd": self._inv_sd.tolist(),
            "ref": self._ref.tolist(),
            "band": {"edges": self._edges, "lower": self._lo, "upper": self._hi},
            "stack": [a.tolist() for a in self._stack.arrays()],
            "trained_on": self.trained_on,
        }

    def _version(self) -> str:
        body = json.dumps(self._body(), sort_keys=True, separators=(",", ":"))
        weights = hashlib.sha256(body.encode()).hexdigest()[:8]
        return f"{MODEL_FORMAT}-{MODEL_VERSION}.{self.config.digest()}.{weights}"

    @classmethod
    def from_dict(
        cls,
        doc: Mapping[str, Any],
        *,
        normalise: Callable[[Reading], Reading] | None = None,
        max_units: int = 100_000,
    ) -> RULEstimator:
        """The estimator ``to_dict`` saved; ``SnapshotError`` for another format or version, or a
        document that does not hold together (config digest, shapes, model version)."""
        obj = load_snapshot(doc, MODEL_FORMAT, MODEL_VERSION)
        try:
            config = RULConfig.model_validate(obj["config"])
            if config.digest() != obj["config_digest"]:
                msg = f"config digest {obj['config_digest']!r} does not match its config ({config.digest()})"
                raise ValueError(msg)
            est = cls(config, normalise=normalise, max_units=max_units)
            est.signals = tuple(str(s) for s in obj["signals"])
            k = len(est.signals)
            n_feat = 2 * k * len(config.spans) + 1
            est._fill = _floats(obj["fill"], (k,))
            est._mu = _floats(obj["mu"], (n_feat,))
            est._inv_sd = _floats(obj["inv_sd"], (n_feat,))
            est._ref = _floats(obj["ref"], (n_feat,))
            band = obj["band"]
            est._edges = [float(v) for v in band["edges"]]
            est._lo = [float(v) for v in band["lower"]]
            est._hi = [float(v) for v in band["upper"]]
            if not (len(est._lo) == len(est._hi) == len(est._edges) + 1):
                msg = "band bins and edges do not match"
                raise ValueError(msg)
            h1, h2 = config.hidden
            m = config.folds
            shapes = [(n_feat, m * h1), (m * h1,), (m, h1, h2), (m, h2), (m, h2), (m,)]
            arrays = [_floats(a, s) for a, s in zip(obj["stack"], shapes, strict=True)]
            est._stack = Stack(*arrays)
            est.trained_on = {str(k): _number(v) for k, v in obj["trained_on"].items()}
            est._index()
            est.model_version = est._version()
            if est.model_version != obj["model_version"]:
                msg = (
                    f"model version {obj['model_version']!r} does not match its weights ({est.model_version})"
                )
                raise ValueError(msg)
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"{MODEL_FORMAT} model cannot be loaded: {type(exc).__name__}: {exc}"
            raise SnapshotError(msg) from None
        return est


def _value(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return math.nan
    return float(v)


def _number(v: Any) -> int | float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        msg = f"{v!r} is not a number"
        raise TypeError(msg)
    return v


def _floats(v: Any, shape: tuple[int, ...]) -> FloatArray:
    a = np.array(v, dtype=np.float64)
    if a.shape != shape:
        msg = f"expected an array of shape {shape}, not {a.shape}"
        raise ValueError(msg)
    return a


def _pick_signals(runs: list[list[Reading]], y: FloatArray, cfg: RULConfig) -> tuple[str, ...]:
    """Numeric signals (not the time) whose |correlation| with the capped RUL is at least the bound."""
    names = sorted({k for h in runs for r in h for k in r if k != cfg.time_key})
    kept = []
    for name in names:
        x = np.array([_value(r.get(name)) for h in runs for r in h])
        ok = ~np.isnan(x)
        if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
            continue
        if abs(float(np.corrcoef(x[ok], y[ok])[0, 1])) >= cfg.min_correlation:
            kept.append(name)
    if not kept:
        among = ", ".join(names) or "none"
        msg = f"no signal correlates with the RUL by at least {cfg.min_correlation} (of {among})"
        raise ValueError(msg)
    return tuple(kept)
