"""RUL on NASA C-MAPSS FD001: our estimator (``processors.maintenance.RULEstimator``) vs the ridge
baseline (``processors.maintenance.baseline.RidgeRUL``, ridge regression on the last reading).

    .venv/bin/python bench/rul_cmapss.py --data-dir /tmp/cmapss                # seeds 0..2
    .venv/bin/python bench/rul_cmapss.py --data-dir /tmp/cmapss --seeds 5 --set FD001 --out rul.json

Both learn on ``train_FD00x.txt`` (RUL target capped at ``--cap``), then every test unit streams
through ``predict_one`` one cycle at a time and the estimate after its last cycle is scored against
``RUL_FD00x.txt`` (capped): RMSE and the PHM08 score (``processors.maintenance.cmapss``). Quality
per seed (the folds and initial weights; the baseline has no randomness) with mean and standard
deviation; training CPU seconds (``time.process_time``, every thread of the process); prediction
throughput in readings per CPU-second, the two estimators timed alternately over ``--rounds``
passes of the whole test set so the machine's load weighs on both alike (median reported).

The data is not in this repository: fetch it at measurement time, e.g.

    git clone --depth 1 https://github.com/alireza-javanmardi/conformal-RUL-intervals /tmp/crul
    mkdir -p /tmp/cmapss && cp /tmp/crul/data/CMAPSS/*_FD001.txt /tmp/cmapss/

(or download the "Turbofan Engine Degradation Simulation" set from NASA's Prognostics Data
Repository and unpack ``train_FD001.txt``, ``test_FD001.txt``, ``RUL_FD001.txt``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from processors.maintenance import RULConfig, RULEstimator
from processors.maintenance.baseline import RidgeRUL
from processors.maintenance.cmapss import evaluate, read_histories, read_truth

FETCH = """C-MAPSS files not found in {dir}. Fetch them (never committed), e.g.:
    git clone --depth 1 https://github.com/alireza-javanmardi/conformal-RUL-intervals /tmp/crul
    mkdir -p {dir} && cp /tmp/crul/data/CMAPSS/*_{set}.txt {dir}/
or download the Turbofan Engine Degradation Simulation data set from NASA's Prognostics Data
Repository and unpack train_{set}.txt, test_{set}.txt and RUL_{set}.txt into {dir}."""

PUBLISHED = [  # FD001, RUL cap 125: RMSE, score (docs/maintenance.md cites them)
    ("CNN (2016)", 18.45, 1290.0),
    ("LSTM (2017)", 16.14, 338.0),
    ("DCNN (2018)", 12.61, 274.0),
    ("MS-DCNN (2020)", 11.44, 196.0),
    ("best published", 11.0, 175.0),
]


def throughput(estimator: Any, test: Mapping[int, Sequence[Mapping[str, Any]]], tag: str) -> float:
    """Readings per CPU-second of ``predict_one`` over the whole test set (fresh unit ids)."""
    n = 0
    t0 = time.process_time()
    for unit, history in test.items():
        uid = f"{tag}-{unit}"
        for reading in history:
            estimator.predict_one(uid, reading)
        n += len(history)
    return n / (time.process_time() - t0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--data-dir", type=Path, default=Path("/tmp/cmapss"), help="folder with the C-MAPSS files"
    )
    parser.add_argument("--set", default="FD001", help="sub-set name (default FD001)")
    parser.add_argument("--cap", type=float, default=125.0, help="RUL cap (default 125)")
    parser.add_argument("--seeds", type=int, default=3, help="train with seeds 0..N-1 (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating throughput rounds (default 5)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    d: Path = args.data_dir
    files = [d / f"{kind}_{args.set}.txt" for kind in ("train", "test", "RUL")]
    if not all(f.is_file() for f in files):
        print(FETCH.format(dir=d, set=args.set), file=sys.stderr)
        raise SystemExit(2)
    train, test, truth = read_histories(files[0]), read_histories(files[1]), read_truth(files[2])
    print(
        f"{args.set}: {len(train)} training units ({sum(map(len, train.values())):,} readings), "
        f"{len(test)} test units ({sum(map(len, test.values())):,} readings); cap {args.cap:g}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )

    t0 = time.process_time()
    base = RidgeRUL(cap=args.cap).learn(train.values())
    base_train = time.process_time() - t0
    b = evaluate(base, test, truth, cap=args.cap)

    runs: list[dict[str, Any]] = []
    model: RULEstimator | None = None
    for seed in range(args.seeds):
        est = RULEstimator(RULConfig(cap=args.cap, seed=seed))
        t0, w0 = time.process_time(), time.perf_counter()
        est.learn(train.values())
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        ev = evaluate(est, test, truth, cap=args.cap)
        band = ev.covered if ev.covered is not None else float("nan")
        runs.append({
            "seed": seed, "rmse": ev.rmse, "score": ev.score, "train_cpu_s": cpu, "train_wall_s": wall,
            "in_band": band,
        })  # fmt: skip
        print(
            f"  seed {seed}: RMSE {ev.rmse:.2f}  score {ev.score:.1f}  in band {band:.0%}  "
            f"training {cpu:.1f} CPU s, {wall:.1f} s wall"
        )
        model = model or est

    assert model is not None
    ours_rps: list[float] = []
    base_rps: list[float] = []
    for r in range(args.rounds):
        pair = [(model, ours_rps, "ours"), (base, base_rps, "base")]
        for estimator, out, tag in pair if r % 2 == 0 else pair[::-1]:
            out.append(throughput(estimator, test, f"{tag}{r}"))

    def mean_sd(key: str) -> tuple[float, float]:
        xs = [float(run[key]) for run in runs]
        return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0

    rmse, rmse_sd = mean_sd("rmse")
    score, score_sd = mean_sd("score")
    train_cpu, _ = mean_sd("train_cpu_s")
    train_wall, _ = mean_sd("train_wall_s")
    ours_med, base_med = statistics.median(ours_rps), statistics.median(base_rps)
    print()
    print(f"{'estimator':38} {'RMSE':>13} {'PHM08 score':>15} {'train CPU s':>12} {'readings/CPU-s':>15}")
    print(f"{'RUL model (MLP ensemble), ' + str(len(runs)) + ' seeds':38} {rmse:7.2f} ±{rmse_sd:4.2f} "
          f"{score:8.1f} ±{score_sd:5.1f} {train_cpu:12.1f} {ours_med:15,.0f}")  # fmt: skip
    print(
        f"{'baseline: ridge on the last reading':38} {b.rmse:13.2f} {b.score:15.1f} {base_train:12.1f} {base_med:15,.0f}"
    )
    for name, r_, s_ in PUBLISHED:
        print(f"{'published: ' + name:38} {r_:13.2f} {s_:15.0f}")
    print(
        f"\ntraining: {train_cpu:.1f} CPU s, {train_wall:.1f} s wall per model (mean); "
        f"BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}"
    )
    print(
        f"ratio ours/baseline: RMSE {rmse / b.rmse:.2f}, score {score / b.score:.3f}, "
        f"throughput {ours_med / base_med:.2f} (rounds: ours {', '.join(f'{x:,.0f}' for x in ours_rps)}; "
        f"baseline {', '.join(f'{x:,.0f}' for x in base_rps)})"
    )
    if args.out is not None:
        args.out.write_text(
            json.dumps(
                {
                    "set": args.set, "cap": args.cap, "model_version": model.model_version, "runs": runs,
                    "rmse_mean": rmse, "score_mean": score, "train_cpu_s_mean": train_cpu,
                    "train_wall_s_mean": train_wall,
                    "baseline": {"rmse": b.rmse, "score": b.score, "train_cpu_s": base_train},
                    "readings_per_cpu_s": {"ours": ours_rps, "baseline": base_rps},
                },
                indent=2,
            )
        )  # fmt: skip


if __name__ == "__main__":
    main()
