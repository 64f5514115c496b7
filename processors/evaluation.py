"""Score anomaly detections against labelled fault intervals (pure; no I/O).

``evaluate`` streams records through one ``AnomalyProcessor`` per machine and scores what they raise.
Two views, because operators and data scientists ask different questions:

**Per event** (point-wise): every scored reading is labelled abnormal when it lies inside a fault
window of its machine (``start <= t < end``) and flagged when its machine had an open anomaly
episode at that reading. Precision, recall and F1 over readings; the false-alarm rate is the share
of normal readings flagged, the missed-alarm rate the share of abnormal readings not flagged.

**Per fault** (what an operator sees): a fault is *detected* when at least one anomaly on its
machine has ``start <= t <= end + grace``; its *delay* is the first such anomaly's time minus
``start``. Anomalies of one machine less than ``merge_gap`` apart (or less than two of its sampling
periods, whichever is longer: anomalies on consecutive readings of a slow-sampled machine are one
alarm, not one per reading) form one *alarm episode*; an
episode none of whose anomalies falls in any fault window (plus grace) of its machine is a *false
episode*. Precision = detected faults / (detected faults + false episodes): splitting one fault
into many episodes cannot inflate it, and every false episode costs. Recall = detected / faults.

>>> f = [FaultWindow("m", "jam", 1_000, 5_000)]
>>> r = score_faults(f, [Detection("m", 2_000), Detection("m", 60_000)], grace_ms=0, merge_gap_ms=1_000)
>>> (r.detected, r.false_episodes, r.precision, r.recall)
(1, 1, 0.5, 1.0)
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from processors.anomaly import AnomalyConfig, AnomalyProcessor
from twin.topics import STATE, TELEMETRY


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """A labelled fault: ``machine_id`` was abnormal from ``start_ms`` (inclusive) to ``end_ms``."""

    machine_id: str
    kind: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Detection:
    """One anomaly event: its machine and event time."""

    machine_id: str
    time_ms: int


def f1(precision: float, recall: float) -> float:
    if math.isnan(precision) or math.isnan(recall) or precision + recall == 0:
        return math.nan if math.isnan(precision) or math.isnan(recall) else 0.0
    return 2 * precision * recall / (precision + recall)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in [0, 1]) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


@dataclass
class PointCounts:
    """Confusion counts over readings; ``add`` one reading at a time (streams of any length)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, abnormal: bool, flagged: bool) -> None:
        if abnormal:
            if flagged:
                self.tp += 1
            else:
                self.fn += 1
        elif flagged:
            self.fp += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return f1(self.precision, self.recall)

    @property
    def false_alarm_rate(self) -> float:
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def missed_alarm_rate(self) -> float:
        return _ratio(self.fn, self.fn + self.tp)


@dataclass
class KindScore:
    """Fault-level results of one fault kind."""

    kind: str
    faults: int = 0
    detected: int = 0
    delays_s: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return _ratio(self.detected, self.faults)

    @property
    def median_delay_s(self) -> float:
        return percentile(self.delays_s, 0.5)

    @property
    def p90_delay_s(self) -> float:
        return percentile(self.delays_s, 0.9)


@dataclass
class FaultScores:
    """Fault-level results: per kind, totals, and the false episodes (machine, start, end ms)."""

    kinds: dict[str, KindScore]
    false_list: list[tuple[str, int, int]]
    episodes: int

    @property
    def faults(self) -> int:
        return sum(k.faults for k in self.kinds.values())

    @property
    def detected(self) -> int:
        return sum(k.detected for k in self.kinds.values())

    @property
    def false_episodes(self) -> int:
        return len(self.false_list)

    @property
    def precision(self) -> float:
        return _ratio(self.detected, self.detected + self.false_episodes)

    @property
    def recall(self) -> float:
        return _ratio(self.detected, self.faults)

    @property
    def f1(self) -> float:
        return f1(self.precision, self.recall)

    @property
    def delays_s(self) -> list[float]:
        return [d for k in self.kinds.values() for d in k.delays_s]


def episodes(times_ms: Iterable[int], merge_gap_ms: int) -> list[list[int]]:
    """Group sorted-or-not anomaly times into episodes: consecutive times < ``merge_gap_ms`` apart."""
    out: list[list[int]] = []
    for t in sorted(times_ms):
        if out and t - out[-1][-1] < merge_gap_ms:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def score_faults(
    faults: Iterable[FaultWindow],
    detections: Iterable[Detection],
    *,
    grace_ms: int,
    merge_gap_ms: int,
    machine_gap_ms: Mapping[str, int] | None = None,
) -> FaultScores:
    """Fault-level precision, recall and delays (see the module docstring for the definitions).
    ``machine_gap_ms``: per machine, a longer merge gap (two sampling periods of a slow machine)."""
    by_machine: dict[str, list[int]] = defaultdict(list)
    for d in detections:
        by_machine[d.machine_id].append(d.time_ms)
    for times in by_machine.values():
        times.sort()
    windows: dict[str, list[tuple[int, int]]] = defaultdict(list)
    kinds: dict[str, KindScore] = {}
    for fault in sorted(faults, key=lambda f: (f.start_ms, f.machine_id)):
        lo, hi = fault.start_ms, fault.end_ms + grace_ms
        windows[fault.machine_id].append((lo, hi))
        score = kinds.setdefault(fault.kind, KindScore(fault.kind))
        score.faults += 1
        first = next((t for t in by_machine.get(fault.machine_id, ()) if lo <= t <= hi), None)
        if first is not None:
            score.detected += 1
            score.delays_s.append((first - fault.start_ms) / 1000)
    false_list: list[tuple[str, int, int]] = []
    total = 0
    for machine_id, times in sorted(by_machine.items()):
        spans = windows.get(machine_id, [])
        gap = max(merge_gap_ms, (machine_gap_ms or {}).get(machine_id, 0))
        for episode in episodes(times, gap):
            total += 1
            if not any(lo <= t <= hi for t in episode for lo, hi in spans):
                false_list.append((machine_id, episode[0], episode[-1]))
    return FaultScores(kinds, false_list, total)


def label_windows(
    rows: Iterable[tuple[str, int, bool]], kind: str = "labelled", end_pad_ms: int = 0
) -> list[FaultWindow]:
    """Fault windows from per-reading 0/1 labels ``(machine_id, time_ms, abnormal)`` in time order:
    each run of abnormal readings is one fault from its first reading to its last plus
    ``end_pad_ms`` (one sample interval, so the window covers the last labelled reading's span)."""
    out: list[FaultWindow] = []
    open_: dict[str, tuple[int, int]] = {}
    for machine_id, t, abnormal in rows:
        run = open_.get(machine_id)
        if abnormal:
            open_[machine_id] = (run[0], t) if run else (t, t)
        elif run:
            out.append(FaultWindow(machine_id, kind, run[0], run[1] + end_pad_ms))
            del open_[machine_id]
    out.extend(FaultWindow(m, kind, s, e + end_pad_ms) for m, (s, e) in open_.items())
    return sorted(out, key=lambda w: (w.start_ms, w.machine_id))


_STEPS = 1000
"""Sampling steps per machine whose median is its sampling period (for the alarm-episode gap)."""


@dataclass
class Evaluation:
    """What one evaluation run produced: fault- and event-level scores, and how fast the detectors ran
    (``detector_s``: time spent inside them, for a readings-per-second figure only)."""

    faults: FaultScores
    points: PointCounts
    readings: int
    anomalies: int
    detector_s: float
    title: str = ""


def evaluate(
    records: Iterable[dict[str, Any]],
    windows: Sequence[FaultWindow],
    *,
    grace_ms: int,
    merge_gap_ms: int,
    labels: Iterable[bool] | None = None,
    config: AnomalyConfig | None = None,
    title: str = "",
    warmup: int = 0,
) -> Evaluation:
    """Stream ``records`` through a fresh ``AnomalyProcessor`` per machine and score what they raise.

    ``records``: telemetry and, optionally, machine-state records (a ``state`` field, no
    ``channels``) in stream order. ``windows``: the labelled faults; ``labels``: optional per-reading
    truth, one per telemetry record (without it a reading is abnormal inside a window of its
    machine). The detectors never see the labels. ``warmup``: the first this-many readings of each
    machine are learning only (a normal-only prefix): not scored, not counted, their labels unread.
    """
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for w in windows:
        spans[w.machine_id].append((w.start_ms, w.end_ms))
    processors: dict[str, AnomalyProcessor] = {}
    detections: list[Detection] = []
    points = PointCounts()
    readings = 0
    busy = 0.0
    truth = iter(labels) if labels is not None else None
    seen: dict[str, int] = defaultdict(int)
    last_t: dict[str, int] = {}
    steps: dict[str, list[int]] = defaultdict(list)
    for record in records:
        machine = str(record["machine_id"])
        processor = processors.get(machine)
        if processor is None:
            processor = processors[machine] = AnomalyProcessor(machine, config)
        if "channels" not in record and "state" in record:
            processor.process_one(STATE, record)
            continue
        started = time.perf_counter()
        emits = processor.process_one(TELEMETRY, record)
        busy += time.perf_counter() - started
        t = int(record["event_time"])
        if machine in last_t and len(steps[machine]) < _STEPS:
            steps[machine].append(t - last_t[machine])
        last_t[machine] = t
        seen[machine] += 1
        if seen[machine] <= warmup:
            if truth is not None:
                next(truth)
            continue
        readings += 1
        detections.extend(Detection(e.key, int(e.record["event_time"])) for e in emits)
        if truth is not None:
            abnormal = bool(next(truth))
        else:
            abnormal = any(lo <= t < hi for lo, hi in spans.get(machine, ()))
        points.add(abnormal, bool(processor.alarming()))
    gaps = {m: 2 * sorted(st)[len(st) // 2] for m, st in steps.items() if st}
    faults = score_faults(
        windows, detections, grace_ms=grace_ms, merge_gap_ms=merge_gap_ms, machine_gap_ms=gaps
    )
    return Evaluation(faults, points, readings, len(detections), busy, title)
