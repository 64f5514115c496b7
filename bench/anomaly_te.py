"""Tennessee Eastman per-fault FDR and FAR of the anomaly detectors under any ``AnomalyConfig``.

The same protocol as ``twin eval anomalies --warmup-file d00.dat --warmup-transposed ...
--sample-period 180 --fault-onset 160`` (learn on the normal run ``d00.dat``, test on each
``dNN_te.dat`` online), with settings the command does not expose, e.g. dynamic lags::

    .venv/bin/python bench/anomaly_te.py '{"subspace_lags": 2}' --data te/

Data: camaramm/tennessee-eastman-profBraatz, fetched at measurement time, never committed.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import cli.eval as eval_cmd
from processors import anomaly

UNDETECTABLE = (3, 9, 15)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", nargs="?", default="{}", help="AnomalyConfig fields as JSON")
    parser.add_argument("--data", type=Path, default=Path("te"), help="folder with d00.dat and dNN_te.dat")
    args = parser.parse_args()
    fields: dict[str, Any] = json.loads(args.config)
    base = anomaly.AnomalyConfig

    class Config(base):  # type: ignore[misc, valid-type]
        """The command builds its own config (warm-up length): these fields go on top."""

        def __init__(self, **kw: Any) -> None:
            super().__init__(**{**fields, **kw})

    anomaly.AnomalyConfig = Config  # type: ignore[misc]
    shape = eval_cmd._Shape(
        label_column="anomaly", time_column="time", delimiter=None, sample_period_s=180,
        index_column=None, sample_rate_hz=None,
    )  # fmt: skip
    fdr: dict[int, float] = {}
    far = 0.0
    for fault in range(22):
        r = eval_cmd._evaluate_file(
            args.data / f"d{fault:02d}_te.dat", shape, machine_id=None,
            fault_onset=None if fault == 0 else 160, grace_s=300, merge_gap_s=300,
            warmup_file=args.data / "d00.dat", warmup_transposed=True,
        )  # fmt: skip
        if fault == 0:
            far = r.points.false_alarm_rate
        else:
            fdr[fault] = r.points.recall
    detectable = [fdr[f] for f in fdr if f not in UNDETECTABLE]
    print(
        f"config {fields}: FAR on d00_te.dat {far:.3f}; mean FDR (18 detectable) {statistics.mean(detectable):.3f}"
    )
    print(" ".join(f"{f}:{v:.3f}" for f, v in fdr.items()))


if __name__ == "__main__":
    main()
