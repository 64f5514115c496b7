"""Hand-computed cases for the detection metrics (processors.evaluation)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from processors.anomaly import AnomalyConfig
from processors.evaluation import (
    Detection,
    FaultWindow,
    PointCounts,
    episodes,
    evaluate,
    label_windows,
    percentile,
    score_faults,
)

S = 1000  # ms per second


def test_fault_detected_by_first_anomaly_in_window_and_delay_measured() -> None:
    faults = [FaultWindow("m1", "jam", 100 * S, 200 * S), FaultWindow("m1", "jam", 1000 * S, 1100 * S)]
    dets = [Detection("m1", 130 * S), Detection("m1", 150 * S), Detection("m1", 1150 * S)]
    r = score_faults(faults, dets, grace_ms=60 * S, merge_gap_ms=30 * S)
    # 1150 s is within the second fault's grace (1100 + 60): detected with a 150 s delay.
    assert (r.faults, r.detected, r.false_episodes) == (2, 2, 0)
    assert r.kinds["jam"].delays_s == [30.0, 150.0]
    assert r.precision == 1.0 and r.recall == 1.0 and r.f1 == 1.0


def test_false_episodes_are_counted_once_per_cluster_and_per_machine() -> None:
    faults = [FaultWindow("m1", "overheating", 100 * S, 200 * S)]
    dets = [
        Detection("m1", 150 * S),  # true
        Detection("m1", 500 * S),  # false episode A ...
        Detection("m1", 520 * S),  # ... same episode (20 s < 30 s gap)
        Detection("m1", 600 * S),  # false episode B
        Detection("m2", 150 * S),  # other machine: its own false episode, even inside m1's window
    ]
    r = score_faults(faults, dets, grace_ms=0, merge_gap_ms=30 * S)
    assert r.detected == 1 and r.false_episodes == 3 and r.episodes == 4
    assert r.precision == pytest.approx(1 / 4)
    assert r.recall == 1.0
    assert r.f1 == pytest.approx(2 * 0.25 / 1.25)
    assert [m for m, _, _ in r.false_list] == ["m1", "m1", "m2"]


def test_anomaly_after_grace_misses_the_fault() -> None:
    faults = [FaultWindow("m1", "stuck_sensor", 0, 10 * S)]
    r = score_faults(faults, [Detection("m1", 20 * S + 1)], grace_ms=10 * S, merge_gap_ms=S)
    assert r.detected == 0 and r.false_episodes == 1 and r.precision == 0.0 and r.recall == 0.0
    assert math.isnan(r.kinds["stuck_sensor"].median_delay_s)


def test_no_detections_gives_undefined_precision() -> None:
    r = score_faults([FaultWindow("m", "jam", 0, 1)], [], grace_ms=0, merge_gap_ms=1)
    assert math.isnan(r.precision) and r.recall == 0.0


def test_point_counts_and_rates() -> None:
    pc = PointCounts()
    for abnormal, flagged in [(True, True), (True, False), (False, True), (False, False), (False, False)]:
        pc.add(abnormal, flagged)
    assert (pc.tp, pc.fn, pc.fp, pc.tn) == (1, 1, 1, 2)
    assert pc.precision == 0.5 and pc.recall == 0.5 and pc.f1 == 0.5
    assert pc.false_alarm_rate == pytest.approx(1 / 3)
    assert pc.missed_alarm_rate == 0.5


def test_percentile_interpolates() -> None:
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.5) == 25.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.9) == pytest.approx(37.0)
    assert percentile([5.0], 0.9) == 5.0


def test_episodes_split_on_gap() -> None:
    assert episodes([5, 1, 2, 20, 21], merge_gap_ms=5) == [[1, 2, 5], [20, 21]]


def test_label_windows_from_row_labels() -> None:
    rows = [("p", 0, False), ("p", 1000, True), ("p", 2000, True), ("p", 3000, False), ("p", 4000, True)]
    assert label_windows(rows, end_pad_ms=1000) == [
        FaultWindow("p", "labelled", 1000, 3000),
        FaultWindow("p", "labelled", 4000, 5000),
    ]


T0 = 1_764_000_000_000
STUCK = FaultWindow("a", "stuck_sensor", T0 + 900 * S, T0 + 1000 * S)


def two_machines() -> list[dict[str, Any]]:
    """Machines a and b, one reading a second each, with state records; a's flow sticks at 900 s."""
    rng = random.Random(4)
    out: list[dict[str, Any]] = []
    for m in ("a", "b"):
        out.append(
            {"event_time": T0 - 1, "machine_id": m, "state": "RUNNING", "previous": None, "reason": ""}
        )
    for i in range(1200):
        for m in ("a", "b"):
            flow = 0.42 if m == "a" and 900 <= i < 1000 else round(30 + rng.gauss(0, 0.5), 2)
            out.append({
                "event_id": f"{m}-{i}", "event_time": T0 + i * S, "line_id": "l", "machine_id": m,
                "channels": [{"name": "flow", "value": flow, "unit": "l/min"}],
            })  # fmt: skip
    return out


def test_evaluate_runs_one_processor_per_machine() -> None:
    config = AnomalyConfig(warmup_s=120, warmup_events=120)
    r = evaluate(two_machines(), [STUCK], grace_ms=0, merge_gap_ms=300 * S, config=config, title="t")
    assert (r.readings, r.faults.detected, r.faults.false_episodes) == (2400, 1, 0)
    # a's readings in its fault are flagged, and a's episode stays open until clear_after quiet
    # readings have passed; b's detectors never see a's stuck sensor (else hundreds of fp).
    assert r.points.tp > 90 and r.points.tp + r.points.fn == 100
    assert 0 < r.points.fp < config.clear_after
    assert r.anomalies >= 1 and r.title == "t"


def test_evaluate_pairs_labels_with_readings_only() -> None:
    # Per-reading labels (as from a CSV) give the same counts as the window: state records take none.
    config = AnomalyConfig(warmup_s=120, warmup_events=120)
    records = two_machines()
    labels = [
        r["machine_id"] == "a" and STUCK.start_ms <= r["event_time"] < STUCK.end_ms
        for r in records
        if "channels" in r
    ]
    by_window = evaluate(records, [STUCK], grace_ms=0, merge_gap_ms=300 * S, config=config)
    by_label = evaluate(records, [STUCK], grace_ms=0, merge_gap_ms=300 * S, config=config, labels=labels)
    assert by_label.points == by_window.points
