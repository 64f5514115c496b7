"""All detectors of one machine, their episodes (k-of-n confirmation, heartbeat, adoption) and the
anomaly records they emit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from processors.anomaly.config import AnomalyConfig
from processors.anomaly.context import Context
from processors.anomaly.regime import FloatArray
from processors.anomaly.signal import Signal
from processors.base import Record, derived_id

FORMAT_VERSION = 3
"""Version of the snapshot layout and of the detectors' maths: part of every model_version."""

SOURCE = "processor:anomaly"
REGIME = "multivariate-regime"
LEVEL = "level-rise"
STUCK = "stuck-sensor"
DROPPED = "dropped-sensor"
DETECTORS = (REGIME, LEVEL, STUCK, DROPPED)

_FAST_ALPHA = 2.0 / (10 + 1)
"""Smoothing (EWMA, span 10 readings) of the value the settling model watches for a turn back."""
_RELAX_TOL = 4.0
"""Noise scales of slack in the settling model: a turn back smaller than this, or a drift this much
ahead of the learned rate x time, is noise."""


@dataclass(slots=True)
class Episode:
    """Alarm state of one detector on one machine."""

    hits: int = 0  # bit i set: the reading i steps ago was over threshold (k-of-n window)
    open: bool = False
    opened_at: int = 0  # event time (ms) the episode opened
    quiet: int = 0  # readings since the last hit
    last_emit: int = 0  # event time of the last anomaly emitted for this episode

    def update(self, hit: bool, config: AnomalyConfig) -> bool:
        """Feed one reading; True when this reading opens the episode."""
        mask = (1 << config.confirm_window) - 1
        self.hits = ((self.hits << 1) | int(hit)) & mask
        self.quiet = 0 if hit else self.quiet + 1
        if self.open:
            if self.quiet >= config.clear_after:
                self.open = False
            return False
        if hit and self.hits.bit_count() >= config.confirm_hits:
            self.open = True
            return True
        return False

    def close(self) -> None:
        self.open = False
        self.hits = 0


@dataclass(slots=True)
class Finding:
    """What one detector says about one reading."""

    detector: str
    score: float
    threshold: float
    contributing: list[dict[str, Any]]


@dataclass
class MachineModel:
    """Detector state of one machine: everything a snapshot must carry."""

    config: AnomalyConfig
    machine_id: str
    signals: list[Signal] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    contexts: dict[str, Context] = field(default_factory=dict)
    episodes: dict[str, Episode] = field(default_factory=dict)
    readings: int = 0
    first_time: int | None = None
    adopted: int = 0
    # Operating-state context, from ``observe_state``: the reported state and when it began.
    state: str | None = None
    state_since: int | None = None
    active: str | None = None  # context key of the last reading (None before the first)
    entered_at: int = 0  # event time the last reading's context began
    in_context: int = 0  # readings since then
    armed: list[bool] = field(default_factory=list)  # signal may raise level-rise in this context
    settled: list[bool] = field(default_factory=list)  # signal has been inside its envelope here
    all_settled: bool = False
    buffer: list[list[float]] = field(default_factory=list)  # readings held back while in alarm
    recent: list[float] = field(default_factory=list)  # last raw multivariate scores
    # Settling (lag) model, per signal, since the last change of context: the value just before
    # it, the smoothed value, its extreme in the relaxation direction, and whether the signal has
    # kept to a relaxation (not turned back, not outrun its learned rate).
    prev_t: int | None = None  # event time of the previous reading
    relax_v0: list[float | None] = field(default_factory=list)
    relax_fast: list[float | None] = field(default_factory=list)
    relax_ext: list[float | None] = field(default_factory=list)
    relax_ok: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in DETECTORS:
            self.episodes.setdefault(name, Episode())

    @property
    def alarming(self) -> list[str]:
        """Detectors with an open episode on this machine."""
        return [name for name, ep in self.episodes.items() if ep.open]

    def observe_state(self, record: Record) -> None:
        """The machine reported an operating state (plain ``machine_state`` record). Only the
        state matters; its reason is not used (it may name a fault: that would be a label)."""
        state = str(record["state"])
        if state != self.state:
            self.state = state
            self.state_since = int(record["event_time"])

    def _context_key(self) -> str:
        if self.state is None:
            return ""
        return self.config.state_groups.get(self.state, self.state)

    def _context(self, key: str) -> Context:
        ctx = self.contexts.get(key)
        if ctx is None:
            ctx = self.contexts[key] = Context(self.config)
            for s in self.signals:
                ctx.add_signal(s.last if s.last is not None else 0.0)
        return ctx

    def _values(self, channels: list[dict[str, Any]]) -> list[float | None]:
        """The reading's values in signal order; unknown channels join, absent ones read None."""
        values: list[float | None] = [None] * len(self.signals)
        for channel in channels:
            name = channel["name"]
            raw = channel.get("value")
            value = None if raw is None or not math.isfinite(raw) else float(raw)
            i = self.index.get(name)
            if i is None:
                i = len(self.signals)
                self.index[name] = i
                self.signals.append(Signal(name, channel.get("unit") or "", self.config))
                for ctx in self.contexts.values():
                    ctx.add_signal(0.0 if value is None else value)
                self.armed.append(False)
                self.settled.append(False)
                self.relax_v0.append(value)
                self.relax_fast.append(None)
                self.relax_ext.append(None)
                self.relax_ok.append(True)
                values.append(None)
            values[i] = value
        return values

    def _enter(self, key: str, t: int) -> None:
        """The machine changed operating context: smoothing restarts, signals must settle."""
        self.active = key
        self.entered_at = t if self.state_since is None else min(t, self.state_since)
        for s in self.signals:
            s.ewma = None
        self.armed = [False] * len(self.signals)
        self.settled = [False] * len(self.signals)
        self.all_settled = False
        self.in_context = 0
        self.recent.clear()
        self.buffer.clear()
        self.relax_v0 = [s.last for s in self.signals]
        self.relax_fast = [None] * len(self.signals)
        self.relax_ext = [None] * len(self.signals)
        self.relax_ok = [True] * len(self.signals)
        self._context(key).entries += 1

    def process(self, telemetry: Record) -> list[Record]:  # noqa: PLR0912, PLR0915 - one reading, top to bottom
        """Score one reading, update episodes, learn what is normal; the anomalies it raises."""
        cfg = self.config
        t = int(telemetry["event_time"])
        values = self._values(telemetry.get("channels") or [])
        signals = self.signals
        self.readings += 1
        if self.first_time is None:
            self.first_time = t
        elapsed_s = (t - self.first_time) / 1000
        warm = self.readings < cfg.warmup_events or elapsed_s < cfg.warmup_s

        key = self._context_key()
        if key != self.active:
            self._enter(key, t)
        ctx = self._context(key)

        ended_gaps = [s.observe(v) for s, v in zip(signals, values, strict=True)]
        # A dropped value keeps its last reading for the multivariate view: missing data is the
        # dropped-sensor detector's finding, not a change of operating state.
        x = [
            v if v is not None else (s.last if s.last is not None else 0.0)
            for s, v in zip(signals, values, strict=True)
        ]
        alpha = 2.0 / (cfg.level_span + 1)
        smoothed = [s.smooth(v, alpha) for s, v in zip(signals, values, strict=True)]
        scale = [s.scale() for s in signals]
        dt_s = 0.0 if self.prev_t is None else max(0.0, (t - self.prev_t) / 1000)
        self.prev_t = t
        if not ctx.calibrated:
            # Settling model: how each signal drifts while in this state (its relaxation).
            for i, (s, v, gap) in enumerate(zip(signals, values, ended_gaps, strict=True)):
                if v is not None and s.last is not None and not gap and self.in_context > 0:
                    limit = 4.0 * s.scale()  # a transition's jump is clipped, as for the noise scale
                    ctx.learn_drift(i, min(max(v - s.last, -limit), limit), dt_s, self.in_context == 1)
        free = self._relax(ctx, key, values, scale, (t - self.entered_at) / 1000)
        regime = ctx.regime
        raw, nearest, dist = regime.score_one(x, scale, free)
        # Persistence filter: a reading is only as abnormal as the least abnormal of the last
        # three, so the one or two samples of a fast transition never count.
        self.recent = [*self.recent[-2:], raw]
        r_score = min(self.recent)
        scored = (raw, nearest, dist)

        self.in_context += 1
        steady = self.in_context >= cfg.level_span  # the smoothed value describes this state now
        calibrating = not ctx.calibrated
        if calibrating:
            # Calibration of this context: everything seen is normal operation in this state.
            regime.learn_one(x, scale, scored)
            if ctx.n >= cfg.warmup_events // 2 and math.isfinite(r_score):
                ctx.regime_q.update(r_score)
                ctx.regime_n += 1
            for i, v in enumerate(values):
                if v is not None:
                    ctx.raw.learn(i, v)
                    e = smoothed[i]
                    if steady and e is not None:
                        ctx.smooth.learn(i, e, can_freeze=not warm)
            ctx.n += 1
            if ctx.n >= cfg.warmup_events and not warm:
                ctx.freeze()
        if warm:
            for s, v, gap in zip(signals, values, ended_gaps, strict=True):
                if gap:
                    s.learn_gap(gap, cfg)
                if v is not None:
                    self._learn_signal(s, v, repeat=True)
            return []
        scoring = not calibrating

        # Settling: after a change of state a signal is compared with this state's envelope only
        # once it has come inside it (a temperature still cooling from the last state is thermal
        # lag, not a fault). One that starts at or below the envelope is watched for a rise at once.
        if scoring:
            raw_env = ctx.raw
            if self.in_context >= 4 * cfg.level_span:
                # Still above the envelope long after the change: no longer settling, a fault.
                self.armed = [True] * len(signals)
            for i, v in enumerate(values):
                if v is None or self.settled[i]:
                    continue
                if v <= raw_env.hi[i]:
                    self.armed[i] = True
                    if v >= raw_env.lo[i]:
                        self.settled[i] = True
            if not self.all_settled and all(self.settled):
                self.all_settled = True
                ctx.settle_s = [*ctx.settle_s[-49:], (t - self.entered_at) / 1000]

        findings: dict[str, Finding] = {}
        hits: dict[str, bool] = {}

        # Multivariate regime: only once every signal has settled into this state.
        r_thr = ctx.regime_threshold(cfg.prototype_radius, cfg.regime_margin)
        hits[REGIME] = scoring and self.all_settled and r_score > r_thr
        if hits[REGIME]:
            contrib = sorted(
                (_contribution(s, v, float(z)) for s, v, z in zip(signals, values, dist, strict=True)),
                key=lambda c: -c["score"],
            )
            findings[REGIME] = Finding(REGIME, r_score, r_thr, contrib)

        # Per-signal detectors.
        level: list[tuple[float, float, dict[str, Any]]] = []
        stuck: list[tuple[float, float, dict[str, Any]]] = []
        dropped: list[tuple[float, float, dict[str, Any]]] = []
        stuck_hit = [False] * len(signals)
        l_thr = 1.0 + cfg.level_margin
        for i, (s, v) in enumerate(zip(signals, values, strict=True)):
            if scoring and v is not None and self.armed[i]:
                # How far above this state's median, in units of its spread up to the upper
                # quantile (1 = at the upper quantile): the raw value, and once the state has
                # lasted a while the smoothed value (a small rise that persists: tool wear).
                sc = _above(v, ctx.raw.med[i], ctx.raw.hi[i], scale[i])
                e = smoothed[i]
                # The reading itself must agree: a rise that has ended is not prolonged by the
                # average's memory.
                if steady and e is not None and ctx.smooth.ready(i):
                    med, hi = ctx.smooth.med[i], ctx.smooth.hi[i]
                    sc = max(sc, min(_above(e, med, hi, scale[i]), _above(v, med, hi, scale[i])))
                if sc > l_thr:
                    level.append((sc / l_thr, l_thr, _contribution(s, v, sc)))
            sc = s.stuck_score(v)
            if sc >= s.stuck_thr:
                stuck_hit[i] = True
                stuck.append((sc / s.stuck_thr, s.stuck_thr, _contribution(s, v, sc)))
            if s.gap >= s.dropped_thr:
                sc = float(s.gap)
                dropped.append((sc / s.dropped_thr, s.dropped_thr, _contribution(s, None, sc)))
        for name, found in ((LEVEL, level), (STUCK, stuck), (DROPPED, dropped)):
            hits[name] = bool(found)
            if found:
                found.sort(key=lambda f: -f[0])
                top = found[0]
                findings[name] = Finding(name, top[2]["score"], top[1], [f[2] for f in found])

        # Episodes and emission.
        out: list[Record] = []
        for name in DETECTORS:
            ep = self.episodes[name]
            opened = ep.update(hits[name], cfg)
            if opened:
                ep.opened_at = t
            if ep.open and hits[name] and (opened or t - ep.last_emit >= cfg.reemit_every_s * 1000):
                ep.last_emit = t
                out.append(self._anomaly(telemetry, findings[name]))

        # Learning, gated so an anomaly never teaches the detectors that it is normal.
        regime_ep = self.episodes[REGIME]
        level_ep = self.episodes[LEVEL]
        quiet = not (regime_ep.open or hits[REGIME] or level_ep.open or hits[LEVEL]) and raw <= r_thr
        # A reading with a signal excused as still relaxing teaches the memory nothing: the states
        # it knows keep their settled levels.
        quiet = quiet and free is None
        for i, (s, v, gap) in enumerate(zip(signals, values, ended_gaps, strict=True)):
            if gap and gap < s.dropped_thr:
                s.learn_gap(gap, cfg)
            if v is not None:
                self._learn_signal(s, v, repeat=not stuck_hit[i])
        if calibrating:
            return out
        if steady and not (level_ep.open or hits[LEVEL]):
            for i, e in enumerate(smoothed):
                if e is not None and not ctx.smooth.ready(i):
                    ctx.smooth.learn(i, e)
        if not self.all_settled:
            return out
        if quiet:
            self.buffer.clear()
            regime.learn_one(x, scale, scored, strict=True, persistent=r_score > cfg.prototype_radius)
        elif regime_ep.open or hits[REGIME]:
            self.buffer.append(x)
            if regime_ep.open and t - regime_ep.opened_at >= cfg.adopt_after_s * 1000:
                # A combination flagged this long is a new normal (a product change): learn it.
                for held in self.buffer:
                    regime.learn_one(held, scale)
                self.buffer.clear()
                regime_ep.close()
                self.adopted += 1
        return out

    def _relax(
        self, ctx: Context, key: str, values: list[float | None], scale: list[float], age_s: float
    ) -> FloatArray | None:
        """Settling (lag) model: per signal, the direction (-1, +1; 0: none) in which the
        multivariate detector lets it differ from the known states at no cost, because it is still
        relaxing after the change of state (drifting the way it learned to drift in this state, no
        faster than its learned rate allows since the change, and not turned back). A turn back or
        an outrun ends the allowance for the rest of the visit. None when no signal is relaxing."""
        cfg = self.config
        relaxing = ctx.calibrated and cfg.relax_margin > 0 and key not in cfg.unplanned_states
        out: FloatArray | None = None
        for i, v in enumerate(values):
            if v is None:
                continue
            fast = self.relax_fast[i]
            fast = v if fast is None else fast + (v - fast) * _FAST_ALPHA
            self.relax_fast[i] = fast
            if not relaxing or not self.relax_ok[i]:
                continue
            direction, rate = ctx.relaxation(i, scale[i])
            if direction == 0:
                continue
            ext = self.relax_ext[i]
            ext = fast if ext is None else (max(ext, fast) if direction > 0 else min(ext, fast))
            self.relax_ext[i] = ext
            v0 = self.relax_v0[i]
            if v0 is None:
                v0 = self.relax_v0[i] = v
            tol = _RELAX_TOL * scale[i]
            if direction * (ext - fast) > tol or direction * (v - v0) > cfg.relax_margin * rate * age_s + tol:
                self.relax_ok[i] = False  # turned back, or faster than a relaxation: score as is
                continue
            if direction * (v - v0) > 0:  # it has moved that way since the change
                if out is None:
                    out = np.zeros(len(values))
                out[i] = direction
        return out

    def _learn_signal(self, s: Signal, v: float, *, repeat: bool) -> None:
        previous = s.last
        s.learn_noise(v, previous, self.config.noise_span)
        if repeat:
            s.learn_repeat(v, previous, self.config)
        s.learn_rails(v)
        s.last = v

    def _anomaly(self, telemetry: Record, finding: Finding) -> Record:
        observed = str(telemetry["event_id"])
        return {
            "event_id": derived_id("anomaly", finding.detector, observed),
            "event_time": int(telemetry["event_time"]),
            "source": SOURCE,
            "correlation_id": observed,
            "line_id": str(telemetry.get("line_id") or ""),
            "machine_id": self.machine_id,
            "score": _finite(finding.score),
            "threshold": _finite(finding.threshold),
            "detector": finding.detector,
            "model_version": f"{FORMAT_VERSION}.{self.config.digest()}#{self.readings}",
            "contributing": [
                {**c, "score": _finite(c["score"])} for c in finding.contributing[: self.config.top_signals]
            ],
            "observed_event_id": observed,
        }


def _above(value: float, med: float, hi: float, scale: float) -> float:
    """``value`` above ``med`` in units of the spread ``hi - med`` (at least one noise scale)."""
    if hi == math.inf:
        return 0.0
    return (value - med) / max(hi - med, scale)


def _contribution(s: Signal, value: float | None, score: float) -> dict[str, Any]:
    return {"name": s.name, "value": value, "unit": s.unit, "score": score}


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 1e300
