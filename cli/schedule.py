"""``twin schedule``: solve scheduling instances side by side, and serve ``schedule.requests``."""

from __future__ import annotations

import math
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from processors.scheduling.model import Instance, SolveResult

app = typer.Typer(
    help="Re-plan the line: compare CP-SAT, dispatch rules, annealing and QAOA on one instance, "
    "or answer schedule.requests live.",
    no_args_is_help=True,
)

DEFAULT_SOLVERS = "cpsat,edd,mwkr,spt,fifo,sa,qaoa"
console = Console(highlight=False)


def _instance(file: Path | None, name: str | None, objective: str | None) -> Instance:
    from processors.scheduling.formats import builtin_instance, load_instance
    from processors.scheduling.model import Objective
    from twin.errors import CommandError

    if (file is None) == (name is None):
        raise CommandError("give an instance file or --instance NAME (e.g. --instance ft06), not both")
    inst = load_instance(file) if file is not None else builtin_instance(str(name))
    if objective is not None:
        try:
            inst = inst.with_objective(Objective(objective))
        except ValueError:
            raise CommandError(
                f"--objective must be makespan or weighted_tardiness, not {objective!r}"
            ) from None
    return inst


def _solver_list(solvers: str) -> list[str]:
    from processors.scheduling.base import solver_names
    from twin.errors import CommandError

    names = [s.strip() for s in solvers.split(",") if s.strip()]
    known = solver_names()
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise CommandError(
            f"unknown solver {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}"
        )
    return names


@app.command("solve")
def solve(
    file: Path | None = typer.Argument(
        None, help="Instance: our YAML/JSON, or job-shop text (OR-Library/Taillard)."
    ),
    instance: str | None = typer.Option(
        None,
        "--instance",
        "-i",
        help="A shipped instance: pm3x3, pm4x3, js3x2, shop8, ft06, ft10, ft20, la01-la40, ta01-ta10.",
    ),
    solvers: str = typer.Option(
        DEFAULT_SOLVERS, "--solvers", "-s", help="Comma-separated solvers to compare."
    ),
    backend: str | None = typer.Option(
        None,
        "--backend",
        help="QAOA backend: fast, reference, aer, ibm, ibm-fake:<FakeBackend> "
        "(default: TWIN_SCHEDULER__QAOA_BACKEND).",
    ),
    reps: int | None = typer.Option(
        None, "--reps", min=1, help="QAOA layers (default: TWIN_SCHEDULER__QAOA_REPS)."
    ),
    shots: int | None = typer.Option(None, "--shots", min=1, help="QAOA shots per evaluation."),
    max_qubits: int | None = typer.Option(None, "--max-qubits", min=1, help="Largest QUBO QAOA takes."),
    evaluations: int | None = typer.Option(
        None,
        "--evaluations",
        min=1,
        help="QAOA optimizer iterations (the annealer gets the same sample budget).",
    ),
    time_limit: float = typer.Option(10.0, "--time-limit", min=0.01, help="Seconds each solver may take."),
    seed: int = typer.Option(0, "--seed", help="Seed of the stochastic solvers."),
    objective: str | None = typer.Option(
        None, "--objective", help="makespan or weighted_tardiness (default: the instance's)."
    ),
    out: Path = typer.Option(
        Path("schedule-out"), "--out", "-o", help="Folder for the Gantt chart and the circuit diagram."
    ),
    chart: str = typer.Option("svg", "--chart", help="Gantt format: svg, png or html."),
) -> None:
    """Solve one instance with each solver, print the comparison, draw the best plan's Gantt chart
    (and the QAOA circuit when QAOA ran).

    Example: twin schedule solve --instance ft06 --solvers cpsat,spt,fifo
    """
    from processors.scheduling.base import make_solver
    from processors.scheduling.formats import builtin_optimum
    from processors.scheduling.gantt import draw_gantt
    from processors.scheduling.model import Budget, SolveResult, Status
    from twin.errors import CommandError
    from twin.settings import Settings

    if chart not in ("svg", "png", "html"):
        raise CommandError(f"--chart must be svg, png or html, not {chart!r}")
    inst = _instance(file, instance, objective)
    names = _solver_list(solvers)
    cfg = Settings().scheduler
    qaoa = cfg.qaoa_options()
    for key, value in (("backend", backend), ("reps", reps), ("shots", shots), ("max_qubits", max_qubits)):
        if value is not None:
            qaoa[key] = value
    budget = Budget(time_limit_s=time_limit, seed=seed, evaluations=evaluations or cfg.evaluations)
    known = builtin_optimum(inst.name) if file is None else None
    console.print(
        f"[bold]{escape(inst.name)}[/]: {inst.size} ({len(inst.operations)} operations"
        f"{', flexible' if inst.is_flexible else ''}{', setups' if inst.setups else ''}), "
        f"objective {inst.objective.value}" + (f", published optimum {known:g}" if known is not None else "")
    )
    results: list[SolveResult] = []
    for name in names:
        options = qaoa if name == "qaoa" else {"max_qubits": qaoa["max_qubits"]} if name == "sa" else {}
        with console.status(f"solving with {name} ..."):
            try:
                result = make_solver(name, **options).solve(inst, budget)
            except Exception as exc:
                from twin.errors import TwinError

                if isinstance(exc, TwinError):
                    raise
                result = SolveResult(name, Status.ERROR, note=f"{type(exc).__name__}: {exc}")
        results.append(result)
        console.print(
            f"  {name}: {result.status.value}"
            + (f" {result.objective:g}" if result.objective is not None else "")
            + f" in {result.wall_s:.2f} s"
        )
    bounds = [r.bound for r in results if r.bound is not None]
    bound = max(bounds) if bounds else known
    console.print(_table(inst, results, bound))
    for r in results:
        if text := details(r):
            console.print(f"  {r.solver}: {escape(text)}")
    ok = [r for r in results if r.ok]
    if not ok:
        raise CommandError("no solver produced a plan")
    best = min(ok, key=lambda r: r.objective if r.objective is not None else math.inf)
    assert best.schedule is not None
    out.mkdir(parents=True, exist_ok=True)
    path = draw_gantt(
        inst,
        best.schedule,
        f"{inst.name}: {best.solver}, {inst.objective.value} {best.objective:g}",
        out / f"{inst.name}-gantt.{chart}",
    )
    console.print(f"Gantt chart of the best plan ({best.solver}): {path}")
    if "qaoa" in names:
        _draw_circuit(inst, results[names.index("qaoa")], qaoa, out)


def _draw_circuit(inst: Instance, result: SolveResult, options: dict[str, Any], out: Path) -> None:
    from processors.scheduling.model import Status

    if result.status in (Status.UNSUPPORTED, Status.ERROR):
        return
    from processors.scheduling.quantum import draw_circuit, final_params, qaoa_circuit

    circuit = qaoa_circuit(
        inst,
        int(options.get("reps") or 1),
        final_params(result),
        max_qubits=int(options.get("max_qubits") or 16),
    )
    path = draw_circuit(circuit, out / f"{inst.name}-qaoa-circuit.svg")
    console.print(
        f"QAOA circuit at its final angles ({circuit.num_qubits} qubits, depth {circuit.depth()}): {path}"
    )


def _fmt(value: float | None, spec: str = "g") -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _table(inst: Instance, results: list[SolveResult], bound: float | None) -> Table:
    table = Table(
        title=f"{inst.name}: {inst.objective.value}"
        + (f", best bound {bound:g}" if bound is not None else "")
    )
    for col in ("solver", "status", "objective", "gap", "time", "backend"):
        table.add_column(col, justify="right" if col in ("objective", "gap", "time") else "left")
    for r in results:
        gap = r.gap_to(bound)
        table.add_row(
            r.solver,
            r.status.value,
            _fmt(r.objective),
            "" if gap is None else f"{gap:.1%}",
            f"{r.wall_s:.3f} s",
            r.backend or "",
        )
    return table


def details(r: SolveResult) -> str:
    """What a solver's metrics and note say, in one line (QAOA's and annealing's quantum figures)."""
    m = r.metrics
    out = []
    if "qubits" in m:
        what = f"{m['qubits']:.0f} qubits"
        if "depth" in m:
            what += f", depth {m['depth']:.0f}, reps {m.get('reps', 0):.0f}"
            what += f", {m.get('evaluations', 0):.0f} evaluations"
        out.append(what)
    for key, label in (
        ("p_feasible", "P(feasible)"),
        ("p_optimal", "P(optimal)"),
        ("approx_ratio_best", "ratio best"),
        ("approx_ratio_expected", "ratio expected"),
    ):
        if key in m:
            out.append(f"{label} {m[key]:.3f}")
    if "tts99_s" in m:
        out.append("TTS99 " + ("inf" if math.isinf(m["tts99_s"]) else f"{m['tts99_s']:.3g} s"))
    if "two_qubit_gates" in m:
        out.append(
            f"transpiled depth {m.get('transpiled_depth', 0):.0f}, 2q gates {m['two_qubit_gates']:.0f}"
        )
    if r.note:
        out.append(r.note)
    return "; ".join(out)


@app.command("bench")
def bench(
    instances: str = typer.Option(
        "pm3x3,pm4x3,js3x2,shop8,ft06,la01,la02,la03,la04,la05",
        "--instances",
        help="Shipped instances to compare on.",
    ),
    solvers: str = typer.Option(DEFAULT_SOLVERS, "--solvers", "-s", help="Comma-separated solvers."),
    time_limit: float = typer.Option(10.0, "--time-limit", min=0.01, help="Seconds each solver may take."),
    evaluations: int | None = typer.Option(
        None, "--evaluations", min=1, help="QAOA iterations (SA: same budget)."
    ),
    backend: str = typer.Option("fast", "--backend", help="QAOA backend."),
    seed: int = typer.Option(0, "--seed"),
    markdown_out: Path | None = typer.Option(
        None, "--markdown", help="Also write the table as Markdown here."
    ),
) -> None:
    """Every solver on the shipped instances: gap to the best known optimum, time, and QAOA's and
    annealing's P(feasible), P(optimal), TTS99 at the same budget (a methodology table)."""
    from processors.scheduling.quality import markdown, run_quality
    from twin.settings import Settings

    qaoa = {**Settings().scheduler.qaoa_options(), "backend": backend}
    names = [n.strip() for n in instances.split(",") if n.strip()]
    for name in names:
        _instance(None, name, None)  # an unknown name is one line before anything runs
    with console.status("solving ...") as status:
        rows = run_quality(
            names,
            _solver_list(solvers),
            time_limit_s=time_limit,
            seed=seed,
            evaluations=evaluations,
            options={"qaoa": qaoa, "sa": {"max_qubits": qaoa["max_qubits"]}},
            progress=lambda what: status.update(f"solving {what} ..."),
        )
    table = markdown(rows)
    console.print(table, markup=False)
    if markdown_out is not None:
        markdown_out.write_text(table + "\n")
        console.print(f"written to {markdown_out}")


@app.command("serve")
def serve(
    group: str | None = typer.Option(
        None, "--group", help="Consumer group (default: TWIN_SCHEDULER__GROUP_ID)."
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        help="Prometheus /metrics port (0: off; default TWIN_METRICS__SCHEDULE_PORT, 9468).",
    ),
    create_topics: bool = typer.Option(
        True, "--create-topics/--no-create-topics", help="Create missing catalog topics first."
    ),
    log_level: str = typer.Option("INFO", "--log-level", help="Log level."),
) -> None:
    """Answer schedule.requests with schedule.plans: every configured solver within the deadline
    (TWIN_SCHEDULER__DEADLINE_S), the best plan published with the comparison of all of them.

    Invalid requests go to schedule.requests.dlq with the reason; a replayed request gives no second plan.
    """
    from cli.metrics import start_metrics
    from cli.servers import require
    from pipelines.scheduler import SchedulerService
    from twin.logs import configure_logging
    from twin.settings import Settings

    settings = Settings()
    require(settings)
    configure_logging(log_level)
    if create_topics:
        from pipelines.topics import ensure_topics
        from twin.topics import prefixed

        ensure_topics(settings, tuple(prefixed(settings.scheduler.topic_prefix)))
    port = start_metrics(settings, "schedule", metrics_port)
    service = SchedulerService(settings, group_id=group, on_plan=lambda record, decision: print_plan(record))
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    cfg = settings.scheduler
    typer.echo(
        f"scheduler (group {service.group_id}): reading {service.requests_topic}, "
        f"solvers {','.join(cfg.solvers)}, "
        f"deadline {cfg.deadline_s:g} s" + (f"; metrics on :{port}/metrics" if port else "")
    )
    stats = service.run(stop)
    typer.echo(
        f"scheduler stopped: {stats.consumed} requests, {stats.planned} plans, "
        f"{stats.duplicates} duplicates skipped, "
        f"{stats.dead_lettered} dead-lettered"
    )


def print_plan(record: dict[str, Any], out: Console | None = None) -> None:
    """One published plan and its solver comparison, as the demo and ``serve`` print it."""
    c = out or console
    obj = record.get("objective")
    c.print(
        f"plan {str(record['plan_id'])[:8]} for {escape(str(record['line_id']))} "
        f"(correlation {str(record['correlation_id'])[:8]}): {record['solver']} {record['status']}, "
        f"{record.get('objective_name', 'makespan')} {obj:.1f} s, {len(record['assignments'])} operations"
        if obj is not None
        else f"plan {record['plan_id']}"
    )
    rows = []
    for o in record.get("comparison") or []:
        val = "" if o.get("objective") is None else f"{o['objective']:.1f}"
        gap = "" if o.get("gap") is None else f" gap {o['gap']:.1%}"
        rows.append(f"{o['solver']} {o['status']} {val}{gap} {o['solve_time_ms']} ms")
    if rows:
        c.print("  " + " | ".join(escape(r) for r in rows))
