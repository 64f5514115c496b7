"""Detectors and remaining-useful-life estimates together, per CPU-second, next to river's usual
online anomaly pipeline on the same readings.

(a) ours:  per machine, ``processors.anomaly.AnomalyProcessor`` (every detector) and
           ``processors.maintenance.MaintenanceProcessor`` (the shipped RUL model of its type), fed
           the machine's telemetry and state records exactly as the worker's machine stage feeds them
(b) river: per machine, ``preprocessing.StandardScaler() | anomaly.HalfSpaceTrees(seed=1)``,
           ``score_one`` then ``learn_one`` on every reading's channel values (what a user reaches
           for first; no RUL at all)

The stream: the default line (seed 1) for ``--hours`` with bearing wear that fails ``cnc-1``
(``fails: true``), as plain records (``EventMapper``), built before timing. Each path runs ``--rounds``
times, alternating; the figure is readings per CPU-second of this process (``time.process_time``),
best round. The issue's goal: (a) >= 10,000 readings per CPU-second.

    .venv/bin/python bench/maintenance_throughput.py --hours 2 --rounds 3
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from processors.anomaly import AnomalyConfig, AnomalyProcessor
from processors.maintenance.processor import MaintenanceConfig, MaintenanceProcessor
from processors.maintenance.store import load_models
from producers.records import EventMapper
from sim import FaultSpec, Simulator, load_factory
from twin.topics import STATE, TELEMETRY

START_MS = 1_764_000_000_000


def stream(hours: float) -> list[tuple[str, dict[str, Any]]]:
    sim = Simulator(load_factory(), seed=1, start_time_ms=START_MS)
    sim.inject(
        FaultSpec(machine="cnc-1", kind="bearing_wear", start_s=600, duration_s=hours * 3000, fails=True)
    )
    mapper = EventMapper(1)
    out = [mapper.map(e) for e in sim.run(until_ms=START_MS + round(hours * 3_600_000))]
    return [(o.topic, o.record) for o in out if o.topic in (TELEMETRY, STATE)]


def ours(records: list[tuple[str, dict[str, Any]]]) -> tuple[float, int, int]:
    config = MaintenanceConfig(models=load_models())
    anomaly: dict[str, AnomalyProcessor] = {}
    rul: dict[str, MaintenanceProcessor] = {}
    estimates = 0
    started = time.process_time()
    for topic, record in records:
        m = record["machine_id"]
        a = anomaly.get(m)
        if a is None:
            a = anomaly[m] = AnomalyProcessor(m, AnomalyConfig())
            rul[m] = MaintenanceProcessor(m, config)
        a.process_one(topic, record)
        estimates += len(rul[m].process_one(topic, record))
    return time.process_time() - started, sum(1 for t, _ in records if t == TELEMETRY), estimates


def river_hst(records: list[tuple[str, dict[str, Any]]]) -> tuple[float, int, int]:
    from river import anomaly, compose, preprocessing

    models: dict[str, Any] = {}
    started = time.process_time()
    n = 0
    for topic, record in records:
        if topic != TELEMETRY:
            continue
        m = record["machine_id"]
        model = models.get(m)
        if model is None:
            model = models[m] = compose.Pipeline(
                preprocessing.StandardScaler(), anomaly.HalfSpaceTrees(seed=1)
            )
        x = {c["name"]: c["value"] for c in record["channels"] if c["value"] is not None}
        model.score_one(x)
        model.learn_one(x)
        n += 1
    return time.process_time() - started, n, 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    records = stream(args.hours)
    best: dict[str, tuple[float, int, int]] = {}
    for _ in range(args.rounds):
        for name, run in (("ours: detectors + RUL", ours), ("river: scaler | HST", river_hst)):
            cpu, readings, estimates = run(records)
            if name not in best or cpu < best[name][0]:
                best[name] = (cpu, readings, estimates)
    print(
        f"{sum(1 for t, _ in records if t == TELEMETRY):,} readings, default line, {args.hours:g} h simulated"
    )
    rates = {}
    for name, (cpu, readings, estimates) in best.items():
        rates[name] = readings / cpu
        extra = f", {estimates:,} RUL estimates published" if estimates else ""
        print(f"{name:24s} {cpu:7.2f} CPU-s  {rates[name]:10,.0f} readings/CPU-s{extra}")
    a, b = rates.values()
    print(f"ratio ours / river: {a / b:.2f}")


if __name__ == "__main__":
    main()
