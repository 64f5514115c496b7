"""``AnomalyProcessor``: online anomaly detection for one machine over its telemetry records.

>>> from twin.topics import TELEMETRY
>>> p = AnomalyProcessor("m", AnomalyConfig(warmup_s=10, warmup_events=10))
>>> rec = lambda i, v: {"event_id": f"id-{i}", "event_time": i * 1000, "line_id": "l", "machine_id": "m",
...                     "channels": [{"name": "t", "value": v, "unit": "degC"}]}
>>> sum(len(p.process_one(TELEMETRY, rec(i, 20.0 + 0.1 * (i % 3)))) for i in range(200))
0
>>> p.learning()
[]
>>> sorted({e.record["detector"] for i in range(200, 210) for e in p.process_one(TELEMETRY, rec(i, 90.0))})
['multivariate-subspace']
>>> p.alarming()
['multivariate-subspace']
>>> q = AnomalyProcessor("m", AnomalyConfig(warmup_s=10, warmup_events=10))
>>> q.restore(p.snapshot())
>>> q.process_one(TELEMETRY, rec(300, 90.0)) == p.process_one(TELEMETRY, rec(300, 90.0))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from processors.anomaly.config import AnomalyConfig
from processors.anomaly.context import Context, Visit
from processors.anomaly.dropped import DroppedSensor
from processors.anomaly.episode import Episode
from processors.anomaly.finding import (
    DETECTORS,
    DROPPED,
    LEVEL,
    MODEL_VERSION,
    REGIME,
    STUCK,
    SUBSPACE,
    Contribution,
    Finding,
    anomaly_record,
    contribution,
    strongest,
)
from processors.anomaly.serial import FloatArray, integer, opt_integer
from processors.anomaly.signal import Signal
from processors.anomaly.stuck import StuckSensor
from processors.anomaly.subspace import SubspaceDetector
from processors.base import Emit, Record, dump_snapshot, load_snapshot
from twin.errors import SnapshotError, one_line
from twin.topics import ANOMALIES, STATE, TELEMETRY

SNAPSHOT_FORMAT = "anomaly"
SNAPSHOT_VERSION = 5
"""Version of the snapshot layout. Versions up to 3 were pickles (refused: relearn); 4 is JSON; 5
adds the subspace detector, the episodes' last hit and the contexts' longest calibrated visit."""

_PICKLE = b"\x80"
"""First byte of a pickle (protocol 2 and later): what the snapshots before version 4 were."""


@dataclass(slots=True)
class _Reading:
    """One reading as the detectors see it, before any of them learns from it."""

    values: list[float | None]  # per signal; None: missing
    x: list[float]  # the multivariate view: a missing value keeps its signal's last one
    smoothed: list[float | None]  # EWMA since the visit began
    scale: list[float]  # noise scales
    free: FloatArray | None  # signals excused as still relaxing (settling model)
    scored: tuple[float, int, FloatArray]  # RegimeDetector.score_one: raw score, prototype, per signal
    score: float  # the multivariate score after the persistence filter
    steady: bool  # the visit lasted level_span readings: the smoothed values describe this state


class _SignalDetector(Protocol):
    """A per-signal detector that needs no operating-state context (``StuckSensor``, ``DroppedSensor``)."""

    threshold: float

    def score_one(self, value: float | None) -> float: ...


class AnomalyProcessor:
    """Learns and scores one machine's telemetry; emits ``Anomaly`` records to ``twin.anomalies``.

    Pure: no Kafka, no I/O, no wall clock. Detectors (one module each): ``RegimeDetector``
    (multivariate, per operating state), ``LevelRise`` (per state and signal), ``SubspaceDetector``
    (multivariate, a continuous process without states; ``AnomalyConfig.multivariate`` says which
    judges a machine), ``StuckSensor`` and ``DroppedSensor`` (per signal); ``Episode`` turns each
    detector's hits into alarms. ``learning()`` says what still learns rather than detects.
    """

    def __init__(self, machine_id: str, config: AnomalyConfig | None = None) -> None:
        self.machine_id = machine_id
        self.config = config or AnomalyConfig()
        self._model_version = f"{MODEL_VERSION}.{self.config.digest()}"
        self._alpha = 2.0 / (self.config.level_span + 1)
        self.signals: list[Signal] = []
        self._index: dict[str, int] = {}
        self.stuck: list[StuckSensor] = []
        self.dropped: list[DroppedSensor] = []
        self.contexts: dict[str, Context] = {}
        self.visit: Visit | None = None
        self.episodes = {name: Episode(self.config) for name in DETECTORS}
        self.subspace: SubspaceDetector | None = None  # multivariate-subspace, once signals are known
        self.readings = 0
        self.first_time: int | None = None
        self.prev_t: int | None = None  # event time of the previous reading
        self._dt_s = 0.0  # seconds since the previous reading (of the reading being processed)
        self.adopted = 0  # new operating states adopted as normal
        # The operating state (``factory.state``) and since when: the context of later readings.
        self.state: str | None = None
        self.state_since: int | None = None

    # -- the processor shape ----------------------------------------------------------------------

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        """Telemetry: learn and score the reading, return its anomalies. Machine state: later
        readings are learned and scored against what is normal in that state."""
        if topic == TELEMETRY:
            return self._telemetry(record)
        if topic == STATE:
            self._state(record)
        return []

    def advance(self, event_time_ms: int) -> list[Emit]:
        """Nothing here is time-driven: the detectors move with the readings."""
        return []

    def alarming(self) -> list[str]:
        """Detectors with an open anomaly episode (empty when all is normal)."""
        return [name for name in DETECTORS if self.episodes[name].is_open]

    def learning(self) -> list[str]:
        """What is still learning rather than detecting, one line each (empty when every detector
        the machine uses is armed). While something learns it raises nothing: the machine's
        warm-up, the current operating state's calibration, a planned state staying longer than any
        stay it was calibrated on (the state learns how long a stay may last), the subspace detector's
        calibration."""
        cfg = self.config
        out: list[str] = []
        if self.first_time is None:
            return ["warm-up: no reading yet"]
        elapsed = 0.0 if self.prev_t is None else (self.prev_t - self.first_time) / 1000
        if self.readings < cfg.warmup_events or elapsed < cfg.warmup_s:
            out.append(
                f"warm-up: {self.readings} of {cfg.warmup_events} readings, "
                f"{elapsed:,.0f} of {cfg.warmup_s:,.0f} s"
            )
        visit = self.visit
        if visit is not None:
            ctx = self.contexts[visit.key]
            state = visit.key or "(no state)"
            if not ctx.calibrated:
                out.append(f"state {state}: calibrating, {ctx.n}/{cfg.warmup_events} readings")
            elif self._extending(ctx, visit):
                out.append(
                    f"state {state}: staying longer ({visit.readings} readings) than any stay it was "
                    f"calibrated on ({ctx.longest}); {REGIME} learns how long it lasts"
                )
        sub = self.subspace
        if sub is not None and self._uses(SUBSPACE) and not sub.ready:
            out.append(f"{SUBSPACE}: calibrating, {sub.n}/{sub.fit_after + sub.calibrate_for} readings")
        return out

    def _uses(self, detector: str) -> bool:
        """Whether this machine is judged by that multivariate detector now (``multivariate``)."""
        mode = self.config.multivariate
        if mode == "both":
            return True
        if mode == "auto":
            return (detector == SUBSPACE) == (self.state is None)
        return mode == ("subspace" if detector == SUBSPACE else "regime")

    def _extending(self, ctx: Context, visit: Visit) -> bool:
        """A planned state that was calibrated only on short stays (none of ``4 x level_span``
        readings) and is now visited longer than any of them: its slow signals may go where the
        calibration never saw them settle. Unplanned states (a jam, a breakdown) are never excused.
        Once a stay is found extending, it stays so (``Visit.extending``) until it ends or reaches
        ``4 x level_span`` readings: the grace is bounded, once per state."""
        cfg = self.config
        return (
            visit.key != ""  # a machine that reports no states has one everlasting stay
            and visit.key not in cfg.unplanned_states
            and ctx.longest < 4 * cfg.level_span
            and (visit.extending or visit.readings > ctx.longest)
        )

    # -- one reading ----------------------------------------------------------------------------

    def _telemetry(self, record: Record) -> list[Emit]:
        """One reading: observe it, calibrate its operating state's baselines while they are new,
        score it with every detector, confirm episodes, then learn what was normal in it."""
        t = int(record["event_time"])
        values = self._values(record.get("channels") or [])
        warm = self._warming_up(t)
        visit = self._visit(t)
        ctx = self.contexts[visit.key]
        reading = self._observe(ctx, visit, values, t)
        calibrating = not ctx.calibrated
        if calibrating:
            self._calibrate(ctx, reading, warm=warm)
            ctx.longest = max(ctx.longest, visit.readings)
        # A reading with a missing value pauses the subspace detector (holding the last value would
        # read as a shift); the dropped-sensor detector has it.
        sub = self._subspace() if self._uses(SUBSPACE) and None not in values else None
        sub_score = 0.0 if sub is None else sub.score_one(reading.x)
        if warm:  # the machine's warm-up: learn, raise nothing
            self._learn_signals(values, stuck=None, warm=True)
            if sub is not None:
                sub.learn_one(reading.x)
            return []
        threshold = ctx.regime.threshold()
        findings, stuck = self._score(ctx, visit, reading, threshold, t, calibrating=calibrating)
        if not self._uses(REGIME):
            # A continuous process: the subspace detector's peak and shift statistics judge single
            # signals too (two-sided), so the per-state envelopes of level-rise stand aside.
            findings[REGIME] = findings[LEVEL] = None
        elif findings[REGIME] is not None and self._extending(ctx, visit) and all(visit.relaxation.ok):
            # Learning this longer stay, not detecting (``learning``); unless a signal turned back
            # against the way it relaxes in this state (heating while it should cool).
            findings[REGIME] = None
        findings[SUBSPACE] = self._subspace_finding(sub, sub_score, reading.values)
        out: list[Emit] = []
        for name in DETECTORS:
            finding = findings[name]
            if self.episodes[name].learn_one(finding is not None, t) and finding is not None:
                out.append(Emit(ANOMALIES, self.machine_id, self._anomaly(record, finding)))
        rate = self._drift_rate(t)
        if sub is not None:
            calm = not sub.ready or (sub.calm() and not self.episodes[SUBSPACE].is_open)
            sub.learn_one(reading.x, rate=rate if calm else 0.0)
        self._learn(ctx, visit, reading, findings, stuck, threshold, calibrating=calibrating, t=t, rate=rate)
        return out

    def _drift_rate(self, t: int) -> float:
        """Weight of this reading in a baseline that follows slow drift (``drift_tau_s``)."""
        tau = self.config.drift_tau_s
        if tau <= 0 or self._dt_s <= 0:
            return 0.0
        return min(1.0, self._dt_s / tau)

    def _subspace(self) -> SubspaceDetector:
        """The machine's subspace detector; a new one (it relearns) when the signals changed."""
        sub = self.subspace
        n = len(self.signals)
        if sub is None or sub.width != n:
            sub = self.subspace = SubspaceDetector(n, **self._subspace_settings())
        return sub

    def _subspace_settings(self) -> dict[str, Any]:
        cfg = self.config
        fit = max(2, cfg.warmup_events // 2)
        return {
            "fit_after": fit,
            "calibrate_for": max(1, cfg.warmup_events - fit),
            "lags": cfg.subspace_lags,
            "variance": cfg.subspace_variance,
            "quantile": cfg.subspace_quantile,
            "stat_span": cfg.subspace_stat_span,
            "shift_span": cfg.subspace_shift_span,
            "shift_margin": cfg.subspace_shift_margin,
        }

    def _subspace_finding(
        self, sub: SubspaceDetector | None, score: float, values: list[float | None]
    ) -> Finding | None:
        if sub is None or not sub.ready or score <= 1.0:
            return None
        contrib = sorted(
            (
                contribution(s.name, s.unit, v, z)
                for s, v, z in zip(self.signals, values, sub.contributions(), strict=True)
            ),
            key=lambda c: -c["score"],
        )
        return Finding(SUBSPACE, score, 1.0, contrib)

    def _warming_up(self, t: int) -> bool:
        """Count the reading; True while the machine is in its warm-up (time and readings)."""
        cfg = self.config
        self.readings += 1
        if self.first_time is None:
            self.first_time = t
        return self.readings < cfg.warmup_events or (t - self.first_time) / 1000 < cfg.warmup_s

    def _observe(self, ctx: Context, visit: Visit, values: list[float | None], t: int) -> _Reading:
        """Everything the detectors score a reading with; learns the settling drift in calibration."""
        cfg = self.config
        # A dropped value keeps its last reading for the multivariate view: missing data is the
        # dropped-sensor detector's finding, not a change of operating state.
        x = [
            v if v is not None else (s.last if s.last is not None else 0.0)
            for s, v in zip(self.signals, values, strict=True)
        ]
        smoothed = visit.smooth(values, self._alpha)
        scale = [s.scale() for s in self.signals]
        dt_s = 0.0 if self.prev_t is None else max(0.0, (t - self.prev_t) / 1000)
        self._dt_s = dt_s
        self.prev_t = t
        if not ctx.calibrated and visit.readings > 0:
            self._learn_drift(ctx, values, scale, dt_s, first_of_visit=visit.readings == 1)
        relaxing = ctx.calibrated and cfg.relax_margin > 0 and visit.key not in cfg.unplanned_states
        free = visit.relaxation.update(
            values, ctx.drift if relaxing else None, scale, (t - visit.entered_at) / 1000, cfg.relax_margin
        )
        # A machine that reports no states has one everlasting stay: nothing to approach.
        near = visit.relaxation.approach(values, ctx.level.raw if relaxing and visit.key else None, scale)
        if near is not None:
            free = near if free is None else np.where(free != 0, free, near)
        scored = ctx.regime.score_one(x, scale, free)
        score = visit.persistent_score(scored[0])
        visit.readings += 1
        steady = visit.readings >= cfg.level_span
        return _Reading(values, x, smoothed, scale, free, scored, score, steady)

    def _learn_drift(
        self,
        ctx: Context,
        values: list[float | None],
        scale: list[float],
        dt_s: float,
        *,
        first_of_visit: bool,
    ) -> None:
        """Settling model: how each signal drifts while in this state (its relaxation)."""
        for i, (s, v) in enumerate(zip(self.signals, values, strict=True)):
            if v is not None and s.last is not None and not self.dropped[i].ends_gap(v):
                limit = 4.0 * scale[i]  # a transition's jump is clipped, as for the noise scale
                ctx.drift.learn_one(
                    i, min(max(v - s.last, -limit), limit), dt_s, first_of_visit=first_of_visit
                )

    def _calibrate(self, ctx: Context, r: _Reading, *, warm: bool) -> None:
        """Calibration of this context: everything seen is normal operation in this state."""
        cfg = self.config
        ctx.regime.learn_one(r.x, r.scale, r.scored)
        if ctx.n >= cfg.warmup_events // 2 and math.isfinite(r.score):
            ctx.regime.calibrate_one(r.score)
        for i, v in enumerate(r.values):
            if v is not None:
                ctx.level.learn_one(i, v, r.smoothed[i] if r.steady else None, can_freeze=not warm)
        ctx.n += 1
        if ctx.n >= cfg.warmup_events and not warm:
            ctx.freeze()

    def _score(
        self, ctx: Context, visit: Visit, r: _Reading, threshold: float, t: int, *, calibrating: bool
    ) -> tuple[dict[str, Finding | None], list[bool]]:
        """Every detector's finding on the reading (None: no hit), and the signals flagged stuck.
        A state still calibrating scores only the detectors that need no baseline of it."""
        findings: dict[str, Finding | None] = {REGIME: None, SUBSPACE: None, LEVEL: None}
        if not calibrating:
            settled = visit.settle(
                r.values, ctx.level.raw, t, arm_all=visit.readings >= 4 * self.config.level_span
            )
            if settled is not None:
                ctx.settled_after(settled)
            # The multivariate detector waits until every signal has settled into this state.
            findings[REGIME] = self._regime(r, threshold) if visit.all_settled else None
            findings[LEVEL] = self._level(ctx, visit, r)
        findings[STUCK], stuck = self._per_signal(STUCK, self.stuck, r.values)
        # Only a missing value can extend a gap.
        findings[DROPPED] = self._per_signal(DROPPED, self.dropped, r.values)[0] if None in r.values else None
        return findings, stuck

    def _regime(self, r: _Reading, threshold: float) -> Finding | None:
        if r.score <= threshold:
            return None
        dist = r.scored[2]
        contrib = sorted(
            (
                contribution(s.name, s.unit, v, float(z))
                for s, v, z in zip(self.signals, r.values, dist, strict=True)
            ),
            key=lambda c: -c["score"],
        )
        return Finding(REGIME, r.score, threshold, contrib)

    def _level(self, ctx: Context, visit: Visit, r: _Reading) -> Finding | None:
        level = ctx.level
        thr = level.threshold
        hits: list[tuple[float, float, Contribution]] = []
        for i, (s, v) in enumerate(zip(self.signals, r.values, strict=True)):
            if v is not None and visit.armed[i]:
                sc = level.score_one(i, v, r.smoothed[i] if r.steady else None, r.scale[i])
                if sc > thr:
                    hits.append((sc / thr, thr, contribution(s.name, s.unit, v, sc)))
        return strongest(LEVEL, hits)

    def _per_signal(
        self, name: str, detectors: Sequence[_SignalDetector], values: list[float | None]
    ) -> tuple[Finding | None, list[bool]]:
        """The finding of a per-signal detector that needs no context, and which signals it flags."""
        hits: list[tuple[float, float, Contribution]] = []
        flags: list[bool] = []
        for s, d, v in zip(self.signals, detectors, values, strict=True):
            sc = d.score_one(v)
            flagged = sc >= d.threshold
            flags.append(flagged)
            if flagged:
                hits.append((sc / d.threshold, d.threshold, contribution(s.name, s.unit, v, sc)))
        return strongest(name, hits), flags

    def _learn(
        self,
        ctx: Context,
        visit: Visit,
        r: _Reading,
        findings: dict[str, Finding | None],
        stuck: list[bool],
        threshold: float,
        *,
        calibrating: bool,
        t: int,
        rate: float = 0.0,
    ) -> None:
        """Learning after scoring, gated so an anomaly never teaches the detectors that it is normal."""
        cfg = self.config
        regime_ep = self.episodes[REGIME]
        regime_alarm = regime_ep.is_open or findings[REGIME] is not None
        level_alarm = self.episodes[LEVEL].is_open or findings[LEVEL] is not None
        # A reading with a signal excused as still relaxing teaches the memory nothing: the states
        # it knows keep their settled levels.
        quiet = not (regime_alarm or level_alarm) and r.scored[0] <= threshold and r.free is None
        self._learn_signals(r.values, stuck=stuck, warm=False)
        if calibrating:
            return
        if r.steady and not level_alarm:
            for i, e in enumerate(r.smoothed):
                if e is not None:
                    ctx.level.learn_smoothed(i, e)
        if rate > 0 and not level_alarm:
            self._follow(ctx, r, rate)
        if self._extending(ctx, visit) and not (level_alarm or regime_alarm):
            # A planned state staying longer than its calibration saw: its length is learned (the
            # next stay this long is judged in full); its trajectory is not (a fault retracing it
            # would pass as normal).
            visit.extending = True
            ctx.longest = visit.readings
            visit.held.clear()
            return
        if not visit.all_settled:
            return
        if quiet:
            visit.held.clear()
            ctx.regime.learn_one(
                r.x, r.scale, r.scored, strict=True, persistent=r.score > cfg.prototype_radius
            )
        elif regime_alarm:
            visit.held.append(r.x)
            if regime_ep.is_open and t - regime_ep.opened_at >= cfg.adopt_after_s * 1000:
                # A combination flagged this long is a new normal (a product change): learn it.
                for held in visit.held:
                    ctx.regime.learn_one(held, r.scale)
                visit.held.clear()
                regime_ep.close()
                self.adopted += 1

    @staticmethod
    def _follow(ctx: Context, r: _Reading, rate: float) -> None:
        """Slow legitimate drift: the level envelopes' centres follow readings inside them."""
        for i, v in enumerate(r.values):
            if v is not None:
                ctx.level.follow(i, v, r.smoothed[i] if r.steady else None, rate)

    def _learn_signals(self, values: list[float | None], *, stuck: list[bool] | None, warm: bool) -> None:
        """Per-signal learning of every reading: gaps, repeats and rails, noise scale, last value.
        ``stuck``: signals flagged stuck now (their repeat does not teach the repeat rate)."""
        for i, (s, v) in enumerate(zip(self.signals, values, strict=True)):
            self.dropped[i].learn_one(v, warm=warm)
            if v is not None:
                self.stuck[i].learn_one(v, flagged=stuck is not None and stuck[i])
                s.learn_one(v)

    def _anomaly(self, telemetry: Record, finding: Finding) -> Record:
        return anomaly_record(
            telemetry,
            self.machine_id,
            finding,
            model_version=f"{self._model_version}#{self.readings}",
            top=self.config.top_signals,
        )

    # -- signals, operating state, visits ---------------------------------------------------------

    def _values(self, channels: list[dict[str, Any]]) -> list[float | None]:
        """The reading's values in signal order; unknown channels join, absent ones read None."""
        values: list[float | None] = [None] * len(self.signals)
        for channel in channels:
            raw = channel.get("value")
            value = None if raw is None or not math.isfinite(raw) else float(raw)
            i = self._index.get(channel["name"])
            if i is None:
                i = self._add_signal(channel["name"], channel.get("unit") or "", value)
                values.append(None)
            values[i] = value
        return values

    def _add_signal(self, name: str, unit: str, value: float | None) -> int:
        cfg = self.config
        i = self._index[name] = len(self.signals)
        self.signals.append(Signal(name, unit, span=cfg.noise_span))
        self.stuck.append(StuckSensor(min_run=cfg.stuck_min_run, alpha=cfg.stuck_alpha))
        self.dropped.append(DroppedSensor(min_run=cfg.dropped_min_run))
        for ctx in self.contexts.values():
            ctx.add_signal(0.0 if value is None else value)
        if self.visit is not None:
            self.visit.add_signal(value)
        return i

    def _state(self, record: Record) -> None:
        """The machine reported an operating state (plain ``machine_state`` record). Only the state
        matters; its reason is not used (it may name a fault: that would be a label)."""
        state = str(record["state"])
        if state != self.state:
            self.state = state
            self.state_since = int(record["event_time"])

    def _visit(self, t: int) -> Visit:
        """The current visit; a new one (smoothing restarts, signals must settle) when the machine
        changed operating context since the last reading."""
        state = self.state
        key = "" if state is None else self.config.state_groups.get(state, state)
        visit = self.visit
        if visit is not None and visit.key == key:
            return visit
        entered_at = t if self.state_since is None else min(t, self.state_since)
        visit = self.visit = Visit(key, entered_at, [s.last for s in self.signals])
        ctx = self.contexts.get(key)
        if ctx is None:
            ctx = self.contexts[key] = Context(self.config)
            for s in self.signals:
                ctx.add_signal(s.last if s.last is not None else 0.0)
        ctx.entries += 1
        return visit

    # -- snapshots ------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The machine's whole detector state: a UTF-8 JSON object (docs/anomaly-detection.md)."""
        body = {
            "config": self.config.digest(),
            "machine_id": self.machine_id,
            "readings": self.readings,
            "first_time": self.first_time,
            "prev_t": self.prev_t,
            "adopted": self.adopted,
            "state": self.state,
            "state_since": self.state_since,
            "signals": [
                {**s.to_dict(), "stuck": st.to_dict(), "dropped": dr.to_dict()}
                for s, st, dr in zip(self.signals, self.stuck, self.dropped, strict=True)
            ],
            "contexts": {key: ctx.to_dict() for key, ctx in self.contexts.items()},
            "visit": None if self.visit is None else self.visit.to_dict(),
            "episodes": {name: ep.to_dict() for name, ep in self.episodes.items()},
            "subspace": None if self.subspace is None else self.subspace.to_dict(),
        }
        return dump_snapshot(SNAPSHOT_FORMAT, SNAPSHOT_VERSION, body)

    def restore(self, data: bytes) -> None:
        """Replace the state with a ``snapshot`` of this machine taken with these settings. Anything
        else (another format or version, other settings or machine, damaged data) is a
        ``SnapshotError`` and leaves the state as it was; nothing in ``data`` is ever executed."""
        if data[:1] == _PICKLE:
            msg = (
                f"anomaly snapshot of {self.machine_id!r} is a pickle (snapshot version 3 or older); "
                f"it is not loaded: this build reads version {SNAPSHOT_VERSION} (JSON), relearn instead"
            )
            raise SnapshotError(msg)
        doc = load_snapshot(data, SNAPSHOT_FORMAT, SNAPSHOT_VERSION)
        if doc.get("config") != self.config.digest():
            msg = (
                f"anomaly snapshot of {self.machine_id!r} was taken with other detector settings "
                f"({doc.get('config')!r}, now {self.config.digest()!r}); relearn instead"
            )
            raise SnapshotError(msg)
        if doc.get("machine_id") != self.machine_id:
            msg = f"anomaly snapshot of machine {doc.get('machine_id')!r} is not {self.machine_id!r}'s"
            raise SnapshotError(msg)
        fresh = AnomalyProcessor(self.machine_id, self.config)
        try:
            fresh._load(doc)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            msg = f"anomaly snapshot of {self.machine_id!r} is damaged: {one_line(exc)}"
            raise SnapshotError(msg) from None
        for name in _STATE:
            setattr(self, name, getattr(fresh, name))

    def _load(self, doc: dict[str, Any]) -> None:
        cfg = self.config
        self.readings = integer(doc["readings"])
        self.first_time, self.prev_t = opt_integer(doc["first_time"]), opt_integer(doc["prev_t"])
        self.adopted = integer(doc["adopted"])
        state = doc["state"]
        self.state = None if state is None else str(state)
        self.state_since = opt_integer(doc["state_since"])
        for d in doc["signals"]:
            s = Signal.from_dict(d, span=cfg.noise_span)
            if s.name in self._index:
                msg = f"signal {s.name!r} appears twice"
                raise ValueError(msg)
            self._index[s.name] = len(self.signals)
            self.signals.append(s)
            self.stuck.append(
                StuckSensor.from_dict(d["stuck"], min_run=cfg.stuck_min_run, alpha=cfg.stuck_alpha)
            )
            self.dropped.append(DroppedSensor.from_dict(d["dropped"], min_run=cfg.dropped_min_run))
        n = len(self.signals)
        self.contexts = {str(key): Context.from_dict(d, cfg, n) for key, d in doc["contexts"].items()}
        visit = doc["visit"]
        self.visit = None if visit is None else Visit.from_dict(visit, n)
        if self.visit is not None and self.visit.key not in self.contexts:
            msg = f"the current visit's context {self.visit.key!r} is missing"
            raise ValueError(msg)
        episodes = doc["episodes"]
        if set(episodes) != set(DETECTORS):
            msg = f"episodes of {sorted(episodes)}, not of {list(DETECTORS)}"
            raise ValueError(msg)
        self.episodes = {name: Episode.from_dict(episodes[name], cfg) for name in DETECTORS}
        sub = doc["subspace"]
        self.subspace = None if sub is None else SubspaceDetector.from_dict(sub, **self._subspace_settings())
        if self.subspace is not None and self.subspace.width != n:
            msg = f"the subspace detector covers {self.subspace.width} signals, not {n}"
            raise ValueError(msg)


_STATE = (
    "signals", "_index", "stuck", "dropped", "contexts", "visit", "episodes", "readings",
    "first_time", "prev_t", "adopted", "state", "state_since", "subspace",
)  # fmt: skip
"""The attributes ``restore`` replaces (all the state; settings stay)."""
