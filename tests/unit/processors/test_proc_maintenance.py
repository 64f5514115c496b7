"""The maintenance step on the simulated line: a small model trained on simulated run-to-failure
histories, then the step's estimates for a machine whose bearing wears out."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastavro.validation import validate

from cli.maintenance import Plan, histories, model_readings, score, train
from processors.maintenance.processor import MaintenanceConfig, MaintenanceProcessor
from processors.maintenance.rul import RULEstimator
from processors.maintenance.store import load_model, save_model
from producers.records import EventMapper
from schemas.loader import load_schema
from sim import FaultSpec, Simulator, StartMaintenance, load_factory
from twin.errors import ConfigError
from twin.topics import MAINTENANCE, STATE, TELEMETRY

T0 = 1_764_000_000_000
CNC = Plan("cnc", "cnc-1", ("bearing_wear",))
Stream = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def model() -> RULEstimator:
    return train(load_factory(), CNC, count=12, seed=3, epochs=120)


def wear_stream(
    seed: int, onset_s: float, life_s: float, until_s: float, maintain_at_s: float | None = None
) -> Stream:
    spec = load_factory()
    quiet = spec.model_copy(update={"scenario": spec.scenario.model_copy(update={"faults": ()})})
    sim = Simulator(quiet, seed=seed, start_time_ms=T0)
    sim.inject(
        FaultSpec(
            machine="cnc-1", kind="bearing_wear", start_s=onset_s, duration_s=life_s, severity=0.9, fails=True
        )
    )
    mapper = EventMapper(seed)
    out = [mapper.map(e) for e in sim.run(until_ms=T0 + round((maintain_at_s or until_s) * 1000))]
    if maintain_at_s is not None:
        sim.act(StartMaintenance("cnc-1", 300))
        out += [mapper.map(e) for e in sim.run(until_ms=T0 + round(until_s * 1000))]
    return [
        (o.topic, o.record)
        for o in out
        if o.topic in (TELEMETRY, STATE) and o.record["machine_id"] == "cnc-1"
    ]


def run(p: MaintenanceProcessor, stream: Stream) -> list[dict[str, Any]]:
    schema = load_schema("maintenance").parsed
    out = []
    for topic, record in stream:
        for e in p.process_one(topic, record):
            assert e.topic == MAINTENANCE and e.key == "cnc-1"
            assert validate(e.record, schema, raise_errors=True, strict=True)
            out.append(e.record)
    return out


def test_estimates_fall_towards_the_failure_with_one_cause_chain_per_life(model: RULEstimator) -> None:
    p = MaintenanceProcessor("cnc-1", MaintenanceConfig(models={"cnc": model}))
    out = run(p, wear_stream(seed=8, onset_s=600, life_s=3600, until_s=4150))
    # At most one a minute, but at once when the low end crosses a horizon (3600 s, 900 s).
    gaps = [(b["event_time"] - a["event_time"]) / 1000 for a, b in itertools.pairwise(out)]
    assert min(gaps) > 0 and len(out) <= 4150 / 60 + 10
    healthy = [e for e in out if e["event_time"] < T0 + 600_000]
    assert healthy and all(e["rul_low_s"] > 3600 for e in healthy)  # no warning before the wear starts
    late = [e for e in out if e["event_time"] > T0 + 3600_000]
    assert late and all(e["rul_s"] < 3600 and not e["capped"] for e in late)
    assert all(e["rul_low_s"] <= e["rul_s"] <= e["rul_high_s"] for e in out)
    # The first estimate under the alarm horizon roots the life's chain; every later one carries it.
    first = next(i for i, e in enumerate(out) if e["rul_s"] < 3600)
    assert {e["correlation_id"] for e in out[first:]} == {out[first]["event_id"]}
    assert out[-1]["contributing"] and out[-1]["contributing"][0]["name"] in (*model.signals, "age")
    final_error = abs(out[-1]["rul_s"] - (4200 - (out[-1]["event_time"] - T0) / 1000))
    assert final_error < 900


def test_maintenance_starts_a_new_life(model: RULEstimator) -> None:
    p = MaintenanceProcessor("cnc-1", MaintenanceConfig(models={"cnc": model}))
    out = run(p, wear_stream(seed=9, onset_s=300, life_s=3000, until_s=3600, maintain_at_s=2700))
    before = [e for e in out if e["event_time"] < T0 + 2700_000]
    after = [e for e in out if e["event_time"] > T0 + 3000_000 + 120_000]
    assert before[-1]["rul_s"] < 3600
    assert after and p.life == 1 and after[-1]["rul_s"] > before[-1]["rul_s"]
    assert after[-1]["model_version"].split("#")[1].startswith("1.")
    assert before[-1]["correlation_id"] not in {e["correlation_id"] for e in after}


def test_a_restored_step_continues_with_the_same_estimates(model: RULEstimator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stream = wear_stream(seed=10, onset_s=300, life_s=2400, until_s=2000)
    whole = run(MaintenanceProcessor("cnc-1", MaintenanceConfig(models={"cnc": model})), stream)
    first = MaintenanceProcessor("cnc-1", MaintenanceConfig(models={"cnc": model}))
    part = run(first, stream[: len(stream) // 2])
    path = tmp_path / "cnc.json"
    save_model(model, path)
    fresh = load_model(path)
    second = MaintenanceProcessor("cnc-1", MaintenanceConfig(models={"cnc": fresh}))
    second.restore(first.snapshot())
    assert part + run(second, stream[len(stream) // 2 :]) == whole


def test_a_machine_type_without_a_model_gets_no_estimates(model: RULEstimator) -> None:
    p = MaintenanceProcessor("cnc-1", MaintenanceConfig(models={"press": model}))
    assert run(p, wear_stream(seed=8, onset_s=60, life_s=600, until_s=300)) == []


def test_the_model_beats_the_naive_estimate_and_converges(model: RULEstimator) -> None:
    tests = histories(load_factory(), CNC, count=3, seed=77)
    s = score(model, tests, mean_life_s=float(model.trained_on["mean_life"]))
    assert s.rmse() < s.rmse(naive=True)
    assert s.bins is not None
    near, far = s.bins[600.0], s.bins[3600.0]
    assert (near[1] / near[0]) < (far[1] / far[0])  # closer to failure, smaller errors
    assert all("t" in r for r in model_readings(tests[0])[:3])


def test_a_damaged_model_file_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "cnc.json"
    bad.write_text('{"format": "rul-mlp", "version": 99}')
    with pytest.raises(ConfigError, match=r"cnc\.json"):
        load_model(bad)
    with pytest.raises(ConfigError, match="no RUL model"):
        load_model(tmp_path / "nope.json")
