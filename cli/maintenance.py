"""``twin maintenance``: train the remaining-useful-life models of a line, and score them.

Histories come from the simulator (``sim.run_to_failure``): per machine type of the layout, the first
machine of that type is run healthy, then worn (bearing wear where it has a vibration channel, and
tool wear) until it fails. ``train`` fits one ``RULEstimator`` per machine type on them and saves it
as ``<machine_type>.json``; ``eval`` runs fresh histories (other seeds) through the same online path
the worker uses and compares the estimates with the true time to failure, and with the naive
estimate a maintenance planner has without a model: the mean life minus the time since the last
maintenance.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from twin.errors import ConfigError

if TYPE_CHECKING:
    from processors.maintenance.rul import RULEstimator
    from sim import FactorySpec, History

console = Console(highlight=False)

app = typer.Typer(
    help="Predictive maintenance: train and score the remaining-useful-life models.",
    no_args_is_help=True,
    add_completion=False,
)

CAP_S = 7200.0
"""RUL cap of the line's models: further than two hours out, a machine is simply "healthy"."""
SPANS_S = (120.0, 600.0, 1800.0)
SAMPLE_S = 10.0
"""Training takes a reading every this many seconds (the features are time constants, so a model
trained on 10-second readings serves 1-second ones)."""
BINS_S = (600.0, 1800.0, 3600.0, CAP_S)
ONSET_S = (3600.0, 7200.0, 21600.0)
"""A machine runs healthy after maintenance for 1 h plus an exponential time (mean 2 h, at most 6 h
in all) before wear begins: when wear starts is a matter of chance, as in a plant (a model trained
on wear that always starts soon would warn about every healthy machine)..."""
LIFE_S = (1800.0, 5400.0)
"""...and the wear then fails it 30 to 90 minutes later."""
HORIZON_S = 3600.0
HOLD_S = 300.0
"""The shipped MaintenanceDue rule: the estimate under an hour for 5 minutes (default_rules.yaml)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The histories of one machine type: which machine, which wear kinds."""

    machine_type: str
    machine_id: str
    kinds: tuple[str, ...]


def plans(factory: FactorySpec) -> list[Plan]:
    """One plan per machine type of ``factory``: its first machine and the wear it can suffer."""
    from sim.faults import WEAR_FAULTS
    from sim.layout import fault_problem

    out: dict[str, Plan] = {}
    for line in factory.lines:
        for station in line.stations:
            if station.machine_type in out:
                continue
            kinds = tuple(sorted(k.value for k in WEAR_FAULTS if fault_problem(k, None, station) is None))
            if kinds:
                out[station.machine_type] = Plan(station.machine_type, station.id, kinds)
    return list(out.values())


def histories(factory: FactorySpec, plan: Plan, count: int, seed: int) -> list[History]:
    """``count`` run-to-failure histories per wear kind of ``plan``: healthy for ``ONSET_S``, then
    wear for ``LIFE_S`` until the failure, severity 0.8-1.0, drawn from ``seed``."""
    from sim import FaultKind, run_to_failure

    rng = random.Random(seed)  # noqa: S311 - reproducible draws, not secrets
    out = []
    for kind in plan.kinds:
        for i in range(count):
            onset, life, severity = (
                min(ONSET_S[0] + rng.expovariate(1 / ONSET_S[1]), ONSET_S[2]),
                rng.uniform(*LIFE_S),
                rng.uniform(0.8, 1.0),
            )
            h = run_to_failure(
                factory, plan.machine_id, FaultKind(kind), seed=seed * 1000 + i, onset_s=onset, life_s=life,
                severity=severity,
            )  # fmt: skip
            out.append(h)
    return out


def model_readings(history: History, sample_s: float = 0.0) -> list[dict[str, Any]]:
    """The readings of ``history`` a model takes (``readings_for_model``), one per ``sample_s``."""
    from processors.maintenance.processor import MaintenanceConfig, readings_for_model

    states = MaintenanceConfig().states
    out: list[dict[str, Any]] = []
    next_t = -math.inf
    for r in history.readings:
        if r.t_s < next_t:
            continue
        reading = readings_for_model(r.t_s, r.state, r.values, states)
        if reading is not None:
            out.append(reading)
            next_t = r.t_s + sample_s
    return out


def train(factory: FactorySpec, plan: Plan, count: int, seed: int, epochs: int) -> RULEstimator:
    """A model of ``plan``'s machine type, trained on simulated run-to-failure histories."""
    from processors.maintenance.rul import RULConfig, RULEstimator

    runs = [model_readings(h, SAMPLE_S) for h in histories(factory, plan, count, seed)]
    config = RULConfig(cap=CAP_S, spans=SPANS_S, epochs=epochs, seed=seed, coverage=0.8)
    return RULEstimator(config).learn(runs)


@dataclass
class Score:
    """Errors (s) of a model and of the naive estimate, over readings with a true RUL <= the cap."""

    readings: int = 0
    se_model: float = 0.0
    se_naive: float = 0.0
    inside: int = 0
    healthy_s: float = 0.0
    """Time observed before the wear began..."""
    false_warnings: int = 0
    """...and the warnings in it: the estimate under ``HORIZON_S`` for ``HOLD_S`` (as the shipped
    MaintenanceDue rule raises)."""
    leads: list[float] | None = None
    """Per history, seconds from its first warning to the failure (0: none)."""
    bins: dict[float, list[float]] | None = None
    """Upper edge of a true-RUL bin -> [n, model squared error, naive squared error]."""

    def rmse(self, naive: bool = False) -> float:
        return (
            math.sqrt((self.se_naive if naive else self.se_model) / self.readings)
            if self.readings
            else math.nan
        )


def score(model: RULEstimator, tests: list[History], mean_life_s: float) -> Score:
    """Each test history through ``model`` reading by reading (as the worker feeds it)."""
    from processors.maintenance.processor import MaintenanceConfig

    leads: list[float] = []
    out = Score(bins={b: [0, 0.0, 0.0] for b in BINS_S}, leads=leads)
    cap = model.config.cap
    warmup = MaintenanceConfig().warmup_s
    for k, h in enumerate(tests):
        unit = f"test-{k}"
        lead = 0.0
        short_since: float | None = None  # since when the estimate is under the horizon
        warned = False
        start = h.readings[0].t_s
        for reading in model_readings(h):
            est = model.predict_one(unit, reading)
            t = reading["t"]
            if t - start < warmup:
                continue  # the worker publishes nothing while a life's trend is still unknown
            if est.rul >= HORIZON_S:
                short_since, warned = None, False
            elif short_since is None:
                short_since = t
            if short_since is not None and t - short_since >= HOLD_S and not warned:
                warned = True
                if t < h.onset_s:
                    out.false_warnings += 1
                elif not lead:
                    lead = h.failure_s - t
            true = min(h.failure_s - reading["t"], cap)
            naive = min(max(mean_life_s - reading["t"], 0.0), cap)
            if h.failure_s - reading["t"] > cap:
                continue  # "healthy" is all either can say that far out
            out.readings += 1
            out.se_model += (est.rul - true) ** 2
            out.se_naive += (naive - true) ** 2
            out.inside += est.lower <= true <= est.upper
            assert out.bins is not None
            edge = next(b for b in BINS_S if true <= b)
            row = out.bins[edge]
            row[0] += 1
            row[1] += (est.rul - true) ** 2
            row[2] += (naive - true) ** 2
        model.forget(unit)
        out.healthy_s += max(0.0, h.onset_s - start - warmup)
        leads.append(lead)
    return out


def _factory(path: Path | None) -> FactorySpec:
    from sim import load_factory

    if path is not None and not path.is_file():
        msg = f"no such file: {path}"
        raise ConfigError(msg)
    return load_factory(path) if path is not None else load_factory()


@app.command("train")
def train_command(
    factory: Path | None = typer.Option(
        None, "--factory", help="Line layout YAML (default: the built-in line)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for <machine_type>.json (default: the models shipped with the worker)."
    ),
    histories_per_kind: int = typer.Option(
        24, "--histories", min=5, help="Run-to-failure histories per machine type and wear kind."
    ),
    seed: int = typer.Option(1, "--seed", help="Seed of the simulated histories and of training."),
    epochs: int = typer.Option(120, "--epochs", min=1, help="Training epochs of each ensemble member."),
    machine_type: list[str] | None = typer.Option(
        None, "--machine-type", help="Only these types (repeatable)."
    ),
) -> None:
    """Train one RUL model per machine type on simulated run-to-failure histories and save them."""
    from processors.maintenance.store import SHIPPED, save_model

    spec = _factory(factory)
    folder = out if out is not None else SHIPPED
    chosen = [p for p in plans(spec) if not machine_type or p.machine_type in machine_type]
    if not chosen:
        msg = "no machine type of the layout can wear out" + (
            f" among {machine_type}" if machine_type else ""
        )
        raise ConfigError(msg)
    for plan in chosen:
        started = time.process_time()
        try:
            model = train(spec, plan, histories_per_kind, seed, epochs)
        except ValueError as exc:  # e.g. no signal of the type moves with its wear: nothing to learn
            console.print(f"{plan.machine_type}: no model ({exc})")
            continue
        save_model(model, folder / f"{plan.machine_type}.json")
        console.print(
            f"{plan.machine_type}: {len(plan.kinds) * histories_per_kind} histories of {plan.machine_id} "
            f"({', '.join(plan.kinds)}), signals {', '.join(model.signals)}; "
            f"{time.process_time() - started:.1f} CPU-s -> {folder / (plan.machine_type + '.json')}"
        )


@app.command("eval")
def eval_command(
    factory: Path | None = typer.Option(
        None, "--factory", help="Line layout YAML (default: the built-in line)."
    ),
    models: Path | None = typer.Option(None, "--models", help="Model folder (default: the shipped models)."),
    histories_per_kind: int = typer.Option(6, "--histories", min=1, help="Test histories per type and kind."),
    seed: int = typer.Option(101, "--seed", help="Seed of the test histories (not the training one)."),
) -> None:
    """Score the models on fresh simulated run-to-failure histories against the naive estimate."""
    from processors.maintenance.store import load_models

    spec = _factory(factory)
    loaded = load_models(models)
    table = Table(title="Remaining useful life on simulated run-to-failure histories", title_justify="left")
    for column in (
        "type",
        "histories",
        "readings",
        "RMSE model",
        "RMSE naive",
        "ratio",
        "in band",
        "false warn.",
        "lead",
    ):
        table.add_column(column, justify="left" if column == "type" else "right")
    convergence = Table(title="RMSE (s) by true remaining life, model / naive", title_justify="left")
    convergence.add_column("type")
    for edge in BINS_S:
        convergence.add_column(f"<= {edge / 60:g} min", justify="right")
    for plan in plans(spec):
        model = loaded.get(plan.machine_type)
        if model is None:
            continue
        tests = histories(spec, plan, histories_per_kind, seed)
        mean_life = _mean_life(model)
        started = time.process_time()
        s = score(model, tests, mean_life)
        cpu = time.process_time() - started
        ratio = s.rmse() / s.rmse(naive=True) if s.readings else math.nan
        table.add_row(
            plan.machine_type, str(len(tests)), f"{s.readings:,}", f"{s.rmse():,.0f} s",
            f"{s.rmse(naive=True):,.0f} s", f"{ratio:.2f}", f"{s.inside / max(1, s.readings):.2f}",
            f"{s.false_warnings / max(1e-9, s.healthy_s / 36_000):.2f}",
            f"{statistics.median(s.leads or [0]) / 60:,.0f} min",
        )  # fmt: skip
        assert s.bins is not None
        convergence.add_row(
            plan.machine_type,
            *(
                f"{math.sqrt(r[1] / r[0]):,.0f} / {math.sqrt(r[2] / r[0]):,.0f}" if r[0] else "n/a"
                for r in (s.bins[e] for e in BINS_S)
            ),
        )
        console.print(
            f"{plan.machine_type}: {s.readings / cpu if cpu else math.nan:,.0f} estimates per CPU-second"
        )
    console.print(table)
    console.print(convergence)
    console.print(
        "naive: the mean life of the training histories minus the time since the last maintenance; "
        "in band: share of readings whose true RUL lies in the estimate's band; "
        f"false warn.: MaintenanceDue alarms (estimate under {HORIZON_S:g} s for {HOLD_S:g} s) per 10 hours "
        "before the wear began; lead: median time from the first one to the failure"
    )


def _mean_life(model: RULEstimator) -> float:
    """Mean life of the model's training histories (saved with the model), else the cap."""
    life = model.trained_on.get("mean_life")
    return float(life) if life else model.config.cap
