"""The RUL estimator on synthetic run-to-failure histories whose answer is known: it converges to the
true RUL as wear grows, beats naive estimates, keeps bounded state, and saves as JSON exactly."""

from __future__ import annotations

import doctest
import json
import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

import processors.maintenance.baseline
import processors.maintenance.features
import processors.maintenance.rul
from processors.maintenance import AGE, Features, RULConfig, RULEstimator
from processors.maintenance.baseline import RidgeRUL
from processors.maintenance.features import TimeCache
from twin.errors import SnapshotError

CAP = 100.0
STEP = 10.0  # seconds between readings: the time axis is seconds, RUL too
CONFIG = RULConfig(
    cap=CAP * STEP, spans=(5 * STEP, 20 * STEP), folds=3, hidden=(16, 8), epochs=40, learning_rate=5e-3
)
Reading = dict[str, float]


def unit(life: int, seed: int) -> list[Reading]:
    """One unit's readings until failure at reading ``life - 1``: vibration rises exponentially in
    the last ~25 readings, efficiency falls linearly at a rate that is the unit's own (1 / life), the
    ambient temperature is unrelated noise and ``nameplate`` a constant."""
    rng = random.Random(seed)
    out = []
    for c in range(life):
        left = life - 1 - c
        out.append({
            "t": 1000.0 + c * STEP,
            "vibration": 1.0 + 4.0 * math.exp(-left / 25.0) + rng.gauss(0, 0.1),
            "efficiency": 0.9 - 0.3 * c / life + rng.gauss(0, 0.004),
            "ambient": 20.0 + rng.gauss(0, 1.0),
            "nameplate": 5.0,
        })  # fmt: skip
    return out


def fleet(n: int, seed: int) -> list[list[Reading]]:
    rng = random.Random(seed)
    return [unit(rng.randint(150, 300), seed * 1000 + i) for i in range(n)]


TRAIN = fleet(18, 1)
TEST = fleet(6, 2)


@pytest.fixture(scope="module")
def model() -> RULEstimator:
    return RULEstimator(CONFIG).learn(TRAIN)


def truth(history: list[Reading]) -> Iterator[float]:
    end = history[-1]["t"]
    for r in history:
        yield min(end - r["t"], CAP * STEP)


def test_picks_the_degrading_signals_only(model: RULEstimator) -> None:
    assert set(model.signals) == {"vibration", "efficiency"}
    mean_life = sum(h[-1]["t"] - h[0]["t"] for h in TRAIN) / len(TRAIN)
    assert model.trained_on == {"histories": 18, "readings": sum(map(len, TRAIN)), "mean_life": mean_life}


def test_estimate_converges_to_the_true_rul_and_beats_naive_estimates(model: RULEstimator) -> None:
    mean_life = model.trained_on["mean_life"]
    ridge = RidgeRUL(cap=CAP * STEP).learn(TRAIN)
    ours, naive, linear, late, early = [], [], [], [], []
    for i, history in enumerate(TEST):
        for r, true in zip(history, truth(history), strict=True):
            e = model.predict_one(f"u{i}", r)
            assert 0 <= e.lower <= e.rul <= e.upper <= CAP * STEP
            if true < CAP * STEP:  # the degrading part of life, where RUL is observable
                age = r["t"] - history[0]["t"]
                ours.append(abs(e.rul - true))
                naive.append(abs(min(max(mean_life - age, 0.0), CAP * STEP) - true))
                linear.append(abs(ridge.predict_one(f"u{i}", r).rul - true))
                if true < 25 * STEP:
                    late.append(abs(e.rul - true))
                elif true >= 75 * STEP:
                    early.append(abs(e.rul - true))
    mae = sum(ours) / len(ours)
    assert mae < 0.2 * sum(naive) / len(naive)  # "mean life minus age"
    assert mae < 0.5 * sum(linear) / len(linear)  # ridge on the last reading
    # Closer to failure the wear shows more: the error shrinks, to about a reading.
    late_mae, early_mae = sum(late) / len(late), sum(early) / len(early)
    assert late_mae < 0.6 * early_mae
    assert late_mae < 2 * STEP


def test_band_holds_the_truth_about_as_often_as_promised(model: RULEstimator) -> None:
    inside = total = 0
    for i, history in enumerate(TEST):
        for r, true in zip(history, truth(history), strict=True):
            e = model.predict_one(f"band{i}", r)
            inside += e.lower <= true <= e.upper
            total += 1
    assert 0.8 <= inside / total <= 1.0


def test_contributors_name_the_signals_that_move_the_estimate(model: RULEstimator) -> None:
    history = TEST[0]
    for r in history:
        e = model.predict_one("c", r)
    names = [name for name, _ in e.contributors]
    assert len(names) == CONFIG.top_signals == 3
    assert names[0] in {"vibration", "efficiency"}
    assert set(names) <= {"vibration", "efficiency", AGE}
    # At failure the signals shorten the life against a healthy unit: the top one counts negative.
    assert e.contributors[0][1] < 0
    assert e.as_dict()["contributors"][0]["signal"] == names[0]


def test_state_per_unit_is_bounded(model: RULEstimator) -> None:
    est = RULEstimator.from_dict(model.to_dict(), max_units=5)
    long = [dict(r, t=r["t"] + k * 10_000.0) for k in range(60) for r in TEST[0]]  # 60 lives, one unit
    sizes = []
    for n, r in enumerate(long):
        est.predict_one("long", r)
        if n in (10, len(long) - 1):
            state = est._units["long"].to_dict()
            sizes.append(sum(len(v) if isinstance(v, list) else 1 for v in state.values()))
    assert len(long) > 8000 and sizes[0] == sizes[1]
    for i in range(12):
        est.predict_one(f"m{i}", TEST[1][0])
    assert est.units == 5  # the least recently seen are forgotten first
    est.forget("m11")
    assert est.units == 4


def test_learning_is_deterministic_and_the_seed_matters() -> None:
    a = RULEstimator(CONFIG).learn(TRAIN)
    b = RULEstimator(CONFIG).learn(TRAIN)
    c = RULEstimator(CONFIG.model_copy(update={"seed": 1})).learn(TRAIN)
    assert a.to_dict() == b.to_dict()
    assert a.model_version == b.model_version != c.model_version
    assert [a.predict_one("u", r).rul for r in TEST[2]] == [b.predict_one("u", r).rul for r in TEST[2]]


def test_json_round_trip_predicts_identically(model: RULEstimator) -> None:
    doc = json.loads(json.dumps(model.to_dict()))
    assert doc["format"] == "rul-mlp" and doc["version"] == 1
    assert doc["config_digest"] == CONFIG.digest()
    restored = RULEstimator.from_dict(doc)
    assert restored.model_version == model.model_version
    fresh = RULEstimator.from_dict(model.to_dict())  # the original's unit states are not in the model
    for r in TEST[3]:
        x, y = fresh.predict_one("u", r), restored.predict_one("u", r)
        assert (x.rul, x.lower, x.upper, x.spread) == (y.rul, y.lower, y.upper, y.spread)
    assert x.contributors == y.contributors


def test_a_unit_state_continues_exactly_after_a_restore(model: RULEstimator) -> None:
    history = TEST[4]
    whole = RULEstimator.from_dict(model.to_dict())
    expected = [whole.predict_one("m", r).rul for r in history]
    first = RULEstimator.from_dict(model.to_dict())
    for r in history[:50]:
        first.predict_one("m", r)
    state = json.loads(json.dumps(first.unit_state("m")))
    assert first.unit_state("nobody") is None
    second = RULEstimator.from_dict(model.to_dict())
    second.restore_unit("m", state)
    assert [second.predict_one("m", r).rul for r in history[50:]] == expected[50:]
    with pytest.raises(SnapshotError, match="cannot be restored"):
        second.restore_unit("m", {**state, "acc": [[0.0]]})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"version": 2}, "version 2 is not supported"),
        ({"format": "anomaly"}, "not a rul-mlp snapshot"),
        ({"config_digest": "00000000"}, "config digest"),
        ({"model_version": "rul-mlp-1.x.y"}, "does not match its weights"),
        ({"mu": [0.0]}, "shape"),
    ],
)
def test_other_versions_and_damaged_models_are_refused(
    model: RULEstimator, edit: dict[str, Any], message: str
) -> None:
    doc = {**model.to_dict(), **edit}
    with pytest.raises(SnapshotError, match=message):
        RULEstimator.from_dict(doc)


def test_changed_weights_are_refused(model: RULEstimator) -> None:
    doc = json.loads(json.dumps(model.to_dict()))
    doc["stack"][5][0] += 0.5
    with pytest.raises(SnapshotError, match="does not match its weights"):
        RULEstimator.from_dict(doc)


def test_readings_without_time_count_positions_and_missing_values_hold() -> None:
    positional = [[{k: v for k, v in r.items() if k != "t"} for r in h] for h in TRAIN]
    cfg = CONFIG.model_copy(update={"cap": CAP, "spans": (5.0, 20.0), "epochs": 5})
    est = RULEstimator(cfg).learn(positional)
    e1 = est.predict_one("u", positional[0][0])
    e2 = est.predict_one("u", {"vibration": None, "efficiency": math.nan})  # nothing usable: held
    assert (e1.t, e2.t, e2.readings) == (1.0, 2.0, 2)
    state = est.unit_state("u")
    assert state is not None
    assert state["last"] == [positional[0][0][s] for s in est.signals]
    e3 = est.predict_one("u", {"t": 1.0, "vibration": 50.0})  # older than the latest: changes nothing
    assert e3.stale and not e2.stale and (e3.t, e3.readings, e3.rul) == (e2.t, 2, e2.rul)
    assert est.predict_one("u", positional[0][1]).readings == 3
    f = Features(("a",), (1.0,))
    f.update(2.0, {"a": 1.0})
    with pytest.raises(ValueError, match="time went back"):
        f.update(1.0, {"a": 1.0})


def test_refuses_to_predict_before_learning_and_bad_histories() -> None:
    with pytest.raises(RuntimeError, match="not learned"):
        RULEstimator(CONFIG).predict_one("u", TEST[0][0])
    with pytest.raises(ValueError, match="at least 3"):
        RULEstimator(CONFIG).learn(TRAIN[:2])
    backwards = [*TRAIN[:3], TRAIN[3][::-1]]
    with pytest.raises(ValueError, match="goes back"):
        RULEstimator(CONFIG).learn(backwards)
    with pytest.raises(ValueError, match=r"signal\(s\) torque in any"):
        RULEstimator(CONFIG.model_copy(update={"signals": ("vibration", "torque")})).learn(TRAIN)
    with pytest.raises(ValueError, match="no signal correlates"):
        RULEstimator(CONFIG).learn([[{"t": float(c), "ambient": 20.0} for c in range(50)]] * 3)


def test_normalise_hook_sees_every_reading() -> None:
    seen = []

    def hook(r: Any) -> Any:
        seen.append(r)
        return r

    est = RULEstimator(CONFIG.model_copy(update={"epochs": 2}), normalise=hook).learn(TRAIN)
    est.predict_one("u", TEST[0][0])
    assert len(seen) == sum(map(len, TRAIN)) + 1


def test_features_match_a_direct_weighted_least_squares_fit() -> None:
    rng = random.Random(3)
    times = [0.0]
    for _ in range(40):
        times.append(times[-1] + rng.choice([0.5, 1.0, 2.5]))  # irregular sampling
    xs = [rng.gauss(0, 1) + 0.3 * t for t in times]
    f = Features(("x",), spans=(7.0,))
    for t, x in zip(times, xs, strict=True):
        out = f.update(t, {"x": x})
    w = [math.exp(-(times[-1] - t) / 7.0) for t in times]
    sw = sum(w)
    mt = sum(wi * t for wi, t in zip(w, times, strict=True)) / sw
    mx = sum(wi * x for wi, x in zip(w, xs, strict=True)) / sw
    cov = sum(wi * (t - mt) * (x - mx) for wi, t, x in zip(w, times, xs, strict=True))
    var = sum(wi * (t - mt) ** 2 for wi, t in zip(w, times, strict=True))
    assert out.tolist() == pytest.approx([mx, cov / var, times[-1]], rel=1e-9)


def test_units_sharing_a_time_cache_compute_the_same_features() -> None:
    rng = random.Random(4)
    cache: TimeCache = {}
    alone = Features(("x", "y"), (3.0, 9.0))
    first = Features(("x", "y"), (3.0, 9.0), cache=cache)
    second = Features(("x", "y"), (3.0, 9.0), cache=cache)
    times = [5.0 * i for i in range(60)] + [300.0, 302.5, 310.0]  # regular, then not
    for t in times:
        r = {"x": rng.gauss(0, 1), "y": rng.gauss(5, 2)}
        a, b, c = alone.update(t, r), first.update(t, r), second.update(t, r)
        assert a.tolist() == b.tolist() == c.tolist()
    assert 60 <= len(cache) <= 62
    restored = Features(("x", "y"), (3.0, 9.0), cache=cache)
    restored.load(json.loads(json.dumps(first.to_dict())))
    r = {"x": 1.0, "y": 2.0}
    assert restored.update(315.0, r).tolist() == alone.update(315.0, r).tolist()


@pytest.mark.parametrize(
    "module", [processors.maintenance.features, processors.maintenance.rul, processors.maintenance.baseline]
)
def test_docstring_examples(module: Any) -> None:
    assert doctest.testmod(module).failed == 0
