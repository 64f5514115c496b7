"""The subspace detector (``multivariate-subspace``), the processor's learning status and its alarm
rate at slow sampling: small generated data only."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from processors.anomaly import AnomalyConfig, AnomalyProcessor, Episode, SubspaceDetector
from processors.base import Record, derived_id
from processors.evaluation import FaultWindow, evaluate
from twin.topics import STATE, TELEMETRY

T0 = 1_764_000_000_000


def correlated(n: int, seed: int = 1, width: int = 4) -> Iterator[list[float]]:
    """Readings of ``width`` signals driven by two latent factors plus a little noise."""
    mix = np.random.default_rng(0).normal(size=(2, width))  # the same process whatever the seed
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield list(rng.normal(size=2) @ mix + 0.1 * rng.normal(size=width))


def calibrated(seed: int = 1) -> SubspaceDetector:
    d = SubspaceDetector(4, fit_after=300, calibrate_for=300)
    for x in correlated(600, seed):
        d.score_one(x)
        d.learn_one(x)
    return d


def test_subspace_is_quiet_on_normal_data_and_flags_a_broken_correlation() -> None:
    d = calibrated()
    assert d.ready
    normal = [d.score_one(x) for x in correlated(2000, seed=2)]
    assert np.mean(np.array(normal) > 1.0) < 0.01
    broken = [d.score_one([x[0], x[1], x[2], x[3] + 2.0]) for x in correlated(50, seed=3)]
    assert np.mean(np.array(broken[10:]) > 1.0) > 0.9


def test_subspace_memory_does_not_grow_with_readings() -> None:
    d = calibrated()
    sizes = []
    for n in (100, 5000):
        for x in correlated(n, seed=4):
            d.score_one(x)
            d.learn_one(x, rate=1e-4)
        sizes.append(len(json.dumps(d.to_dict()).split(",")))
    assert sizes[0] == sizes[1]


def test_subspace_is_deterministic_and_its_snapshot_continues_exactly() -> None:
    a, b = calibrated(), calibrated()
    c = SubspaceDetector.from_dict(json.loads(json.dumps(a.to_dict())), fit_after=300, calibrate_for=300)
    for x in correlated(300, seed=5):
        scores = {a.score_one(x), b.score_one(x), c.score_one(x)}
        assert len(scores) == 1
        for d in (a, b, c):
            d.learn_one(x, rate=1e-3)


def test_subspace_snapshot_mid_calibration_continues_exactly() -> None:
    d = SubspaceDetector(4, fit_after=100, calibrate_for=100, lags=1)
    xs = list(correlated(400, seed=6))
    for x in xs[:150]:
        d.score_one(x)
        d.learn_one(x)
    e = SubspaceDetector.from_dict(
        json.loads(json.dumps(d.to_dict())), fit_after=100, calibrate_for=100, lags=1
    )
    for x in xs[150:]:
        assert d.score_one(x) == e.score_one(x)
        d.learn_one(x)
        e.learn_one(x)
    assert d.ready and e.ready


def test_a_short_unsteady_calibration_keeps_limits_above_the_noise() -> None:
    # A spike at the start then calm: the calibrated quantiles alone would sit inside the noise.
    d = SubspaceDetector(1, fit_after=60, calibrate_for=60)
    rng = random.Random(1)
    for i in range(120):
        x = [100.0 if i < 3 else rng.gauss(30, 1)]
        d.score_one(x)
        d.learn_one(x)
    assert np.all(d.limits >= d.floors() - 1e-12)


# -- the processor: warm-up, learning, slow drift, steps, alarm rate ------------------------------


def record(i: int, values: dict[str, float | None], period_s: float, machine: str = "m-1") -> Record:
    return {
        "event_id": derived_id("reading", machine, i),
        "event_time": T0 + round(i * period_s * 1000),
        "source": "test",
        "correlation_id": derived_id("reading", machine, i),
        "line_id": "l",
        "machine_id": machine,
        "channels": [{"name": k, "value": v, "unit": "u"} for k, v in values.items()],
    }


def temperature(
    n: int, period_s: float, level: Callable[[int], float] = lambda i: 0.0, seed: int = 3
) -> Iterator[Record]:
    """One temperature with gaussian noise (sd 0.5) around 70 + ``level(i)``."""
    rng = random.Random(seed)
    for i in range(n):
        yield record(i, {"temperature": 70.0 + level(i) + rng.gauss(0, 0.5)}, period_s)


def emits_of(records: Iterator[Record], p: AnomalyProcessor) -> list[tuple[int, str]]:
    out = []
    for i, r in enumerate(records):
        out += [(i, e.record["detector"]) for e in p.process_one(TELEMETRY, r)]
    return out


def test_warm_up_says_so_and_raises_nothing_even_on_a_fault() -> None:
    cfg = AnomalyConfig(warmup_s=60, warmup_events=200)
    p = AnomalyProcessor("m-1", cfg)
    assert p.learning() == ["warm-up: no reading yet"]
    records = list(temperature(400, 1.0, level=lambda i: 30.0 if 100 <= i < 150 else 0.0))
    statuses = []
    for i, r in enumerate(records):
        assert p.process_one(TELEMETRY, r) == [] or i >= 200
        statuses.append(p.learning())
    assert statuses[50][0].startswith("warm-up: 51 of 200 readings")
    assert any("multivariate-subspace: calibrating" in s for s in statuses[50])
    assert statuses[-1] == []


def test_a_planned_state_staying_longer_than_calibrated_learns_instead_of_alarming() -> None:
    # IDLE is calibrated on short idles only (a warm machine barely cools); a long idle then cools
    # far past that baseline: still learning, said so, no alarm. DOWN (unplanned) gets no such excuse.
    cfg = AnomalyConfig(warmup_s=60, warmup_events=60, level_span=30)
    p = AnomalyProcessor("m-1", cfg)
    rng = random.Random(5)
    t, i, temp = 0.0, 0, 60.0
    emits: list[str] = []
    statuses: list[list[str]] = []

    def stay(state: str, seconds: int, target: float) -> None:
        nonlocal i, t, temp
        p.process_one(STATE, {"machine_id": "m-1", "state": state, "event_time": T0 + round(t * 1000)})
        for _ in range(seconds):
            temp += (target - temp) * 0.01
            r = record(
                i,
                {
                    "temperature": temp + rng.gauss(0, 0.05),
                    "power": (5.0 if state == "RUNNING" else 0.2) + rng.gauss(0, 0.05),
                },
                1.0,
            )
            r["event_time"] = T0 + round(t * 1000)
            emits.extend(e.record["detector"] for e in p.process_one(TELEMETRY, r))
            statuses.append(p.learning())
            i += 1
            t += 1.0

    for _ in range(8):  # warm-up and calibration: short idles
        stay("RUNNING", 60, 60.0)
        stay("IDLE", 15, 20.0)
    stay("RUNNING", 300, 60.0)
    before = len(emits)
    stay("IDLE", 400, 20.0)  # a long break: it cools far below anything IDLE calibrated on
    assert "multivariate-regime" not in emits[before:]
    assert any("staying longer" in line for s in statuses[-300:] for line in s)
    # The next long break is known: not learning any more.
    stay("RUNNING", 300, 60.0)
    stay("IDLE", 300, 20.0)
    assert not any("staying longer" in line for s in statuses[-300:] for line in s)


def test_slow_drift_does_not_alarm_while_a_step_does_at_five_minute_samples() -> None:
    period = 300.0  # a reading every 5 minutes, four weeks
    n = 8064
    drift = list(temperature(n, period, level=lambda i: 1.0 * i / n))  # 2 noise sd over four weeks
    p = AnomalyProcessor("m-1", AnomalyConfig())
    assert emits_of(iter(drift), p) == []
    step = list(temperature(2000, period, level=lambda i: 3.0 if i >= 1500 else 0.0))
    q = AnomalyProcessor("m-1", AnomalyConfig())
    hits = emits_of(iter(step), q)
    assert hits and all(i >= 1500 for i, _ in hits)
    assert min(i for i, _ in hits) < 1500 + 24  # within two hours


def test_episode_closes_in_seconds_not_readings_at_slow_sampling() -> None:
    ep = Episode(AnomalyConfig(confirm_hits=1, confirm_window=1, clear_after=60, clear_after_s=900))
    ep.learn_one(True, 0)
    closed_at = next(k for k in range(1, 61) if not (ep.learn_one(False, k * 300_000) or ep.is_open))
    assert closed_at == 3  # 900 s at 300 s a reading, not 60 readings (five hours)


def test_chattering_at_slow_sampling_is_one_alarm_episode() -> None:
    # Every other reading far out for two hours at a reading every 5 minutes: one episode, a
    # heartbeat at most once a reading, never a new alarm per reading.
    period = 300.0
    rows = list(temperature(700, period, level=lambda i: 20.0 if 600 <= i < 624 and i % 2 else 0.0))
    result = evaluate(
        rows,
        [FaultWindow("m-1", "x", T0 + 600 * 300_000, T0 + 624 * 300_000)],
        grace_ms=300_000,
        merge_gap_ms=300_000,
    )
    assert result.faults.episodes == 1
    assert result.faults.detected == 1


def test_the_detectors_never_see_the_labels() -> None:
    rows = list(temperature(900, 1.0, level=lambda i: 5.0 if i >= 700 else 0.0))
    window = [FaultWindow("m-1", "x", T0 + 700_000, T0 + 900_000)]
    a = evaluate(rows, window, grace_ms=0, merge_gap_ms=300_000, labels=[False] * 900)
    b = evaluate(rows, window, grace_ms=0, merge_gap_ms=300_000, labels=[True] * 900)
    assert a.anomalies == b.anomalies and a.anomalies > 0
    assert a.faults.false_list == b.faults.false_list


@pytest.mark.parametrize("mode", ["regime", "subspace", "both"])
def test_multivariate_mode_picks_the_detectors(mode: str) -> None:
    p = AnomalyProcessor("m-1", AnomalyConfig(warmup_s=60, warmup_events=100, multivariate=mode))
    found = {d for _, d in emits_of(temperature(300, 1.0, level=lambda i: 30.0 if i >= 200 else 0.0), p)}
    if mode == "regime":  # the prototypes and the per-state envelopes, as before the subspace
        assert "multivariate-subspace" not in found and found & {"multivariate-regime", "level-rise"}
    elif mode == "subspace":
        assert found == {"multivariate-subspace"}
    else:
        assert "multivariate-subspace" in found and found & {"multivariate-regime", "level-rise"}


def test_warmup_prefix_in_evaluation_is_not_scored() -> None:
    rows = list(temperature(600, 1.0))
    result = evaluate(rows, [], grace_ms=0, merge_gap_ms=300_000, warmup=200)
    assert result.readings == 400


@pytest.mark.parametrize("seed", [42, 7])
def test_demo_jam_does_not_alarm_the_starved_stations_after_warm_up(seed: int) -> None:
    # `twin demo`: a jam on weld-1 a third into 40 simulated minutes starves paint-1 and qc-1 right
    # after their warm-up; their idle baselines only saw 20-second idles. No alarm there.
    from producers.records import EventMapper
    from sim import Simulator, load_factory
    from sim.events import StateChangeEvent, TelemetryEvent
    from sim.layout import FaultSpec

    sim = Simulator(load_factory(), seed=seed, start_time_ms=T0)
    sim.inject(FaultSpec(machine="weld-1", kind="jam", start_s=800, duration_s=400, severity=1.0))
    mapper = EventMapper(seed)
    procs: dict[str, AnomalyProcessor] = {}
    raised: list[tuple[str, str]] = []
    for event in sim.run(until_ms=T0 + 1_500_000):
        if not isinstance(event, TelemetryEvent | StateChangeEvent):
            continue
        rec = mapper.map(event).record
        p = procs.setdefault(rec["machine_id"], AnomalyProcessor(rec["machine_id"]))
        topic = STATE if isinstance(event, StateChangeEvent) else TELEMETRY
        raised += [(e.key, e.record["detector"]) for e in p.process_one(topic, rec)]
    assert not [r for r in raised if r[0] in ("paint-1", "qc-1")], raised
