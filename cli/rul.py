"""``twin eval rul``: train (or load) the RUL estimator and score it on NASA C-MAPSS.

The test units stream through ``predict_one`` one cycle at a time; the estimate after each unit's
last cycle is scored against the true RUL (capped) by RMSE and the PHM08 score
(``processors.maintenance.cmapss``), next to the ridge baseline on the same files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from twin.errors import ConfigError

if TYPE_CHECKING:
    pass

console = Console(highlight=False)

Row = tuple[str, float, float, "tuple[float, float] | None", float, "float | None"]
"""estimator, RMSE, PHM08 score, training (CPU s, wall s), readings per CPU-s, share in band"""

FETCH_HINT = (
    "C-MAPSS comes from NASA's Prognostics Data Repository, or: git clone --depth 1 "
    "https://github.com/alireza-javanmardi/conformal-RUL-intervals (files under data/CMAPSS/)"
)


def rul(
    train: Path | None = typer.Option(
        None, "--train", help="C-MAPSS training file (run-to-failure), e.g. train_FD001.txt."
    ),
    test: Path = typer.Option(..., "--test", help="C-MAPSS test file, e.g. test_FD001.txt."),
    truth: Path = typer.Option(..., "--truth", help="True RUL of each test unit, e.g. RUL_FD001.txt."),
    cap: float = typer.Option(125.0, "--cap", min=1, help="RUL ceiling of the target and of the truth."),
    save: Path | None = typer.Option(None, "--save", help="Write the trained model here (JSON)."),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Evaluate this saved model (JSON) instead of training one (--train then fits the baseline).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and of the networks' initial weights."),
) -> None:
    """Train the RUL estimator on C-MAPSS (or load one) and print RMSE and PHM08 score on the test set.

    twin eval rul --train train_FD001.txt --test test_FD001.txt --truth RUL_FD001.txt --save rul.json
    """
    from processors.maintenance import RULConfig, RULEstimator
    from processors.maintenance.baseline import RidgeRUL
    from processors.maintenance.cmapss import evaluate, read_histories, read_truth

    if train is None and model is None:
        msg = "give --train FILE to train a model, or --model FILE to evaluate a saved one"
        raise ConfigError(msg)
    for path in (train, test, truth, model):
        if path is not None and not path.is_file():
            msg = f"no such file: {path}. {FETCH_HINT}"
            raise ConfigError(msg)
    try:
        test_units = read_histories(test)
        true_rul = read_truth(truth)
        train_units = read_histories(train) if train is not None else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if len(true_rul) != len(test_units):
        msg = f"{truth}: {len(true_rul)} values for {len(test_units)} test units in {test}"
        raise ConfigError(msg)

    rows: list[Row] = []
    trained: tuple[float, float] | None = None
    if model is not None:
        from processors.maintenance.store import load_model

        est = load_model(model)
        if est.config.cap != cap:
            console.print(
                f"[yellow]{model} was trained with cap {est.config.cap:g}; the truth is capped at {cap:g}"
            )
    else:
        assert train_units is not None
        est = RULEstimator(RULConfig(cap=cap, seed=seed))
        readings = sum(map(len, train_units.values()))
        with console.status(f"training on {len(train_units)} units ({readings:,} readings)"):
            t0, w0 = time.process_time(), time.perf_counter()
            try:
                est.learn(train_units.values())
            except ValueError as exc:
                raise ConfigError(f"{train}: {exc}") from None
            trained = (time.process_time() - t0, time.perf_counter() - w0)
    if save is not None:
        from processors.maintenance.store import save_model

        save_model(est, save)
    ours = evaluate(est, test_units, true_rul, cap=cap)
    rows.append(("RUL model", ours.rmse, ours.score, trained, ours.readings_per_cpu_s, ours.covered))
    if train_units is not None:
        t0, w0 = time.process_time(), time.perf_counter()
        base = RidgeRUL(cap=cap).learn(train_units.values())
        base_time = (time.process_time() - t0, time.perf_counter() - w0)
        theirs = evaluate(base, test_units, true_rul, cap=cap)
        rows.append(("ridge baseline", theirs.rmse, theirs.score, base_time, theirs.readings_per_cpu_s, None))

    print_table(
        rows, f"RUL on {test.name}: {ours.units} units, {ours.readings:,} readings, truth capped at {cap:g}"
    )
    console.print(
        f"RUL model: {est.model_version} (MLP ensemble). Ridge baseline: ridge regression on the last "
        f"reading. Scored at each test unit's last cycle after streaming every cycle through "
        f"predict_one. In band: share of units whose capped true RUL lies in the "
        f"{est.config.coverage:.0%} band." + (f" Model saved to {save}." if save is not None else "")
    )


def print_table(rows: list[Row], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("estimator", "RMSE", "score", "training CPU/wall s", "readings/CPU-s", "in band"):
        table.add_column(column, justify="left" if column == "estimator" else "right")
    for name, r, s, tc, rps, cov in rows:
        table.add_row(
            name, f"{r:.2f}", f"{s:,.1f}", "-" if tc is None else f"{tc[0]:.1f} / {tc[1]:.1f}",
            f"{rps:,.0f}", "-" if cov is None else f"{cov:.0%}",
        )  # fmt: skip
    console.print(table)
