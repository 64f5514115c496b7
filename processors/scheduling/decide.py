"""One scheduling decision: run the configured solvers on an instance within a deadline, compare
them, choose a plan, and describe it as a ``schedule.plans`` record.

Solvers run side by side: dispatch rules at once (milliseconds), CP-SAT with a time limit just
under the deadline, annealing and QAOA in their own threads. A solver still running at the deadline
counts as TIMEOUT (its thread finishes in the background; its answer is dropped). A solver that
raises counts as ERROR. Gaps are measured against the best proven lower bound any solver gave
(CP-SAT's), so every row of the comparison reads against the same yardstick.

Choosing: ``best-feasible`` takes the lowest objective among the plans (ties: the order of the
configured solvers); ``prefer:<solver>`` takes that solver's plan when it has one, else the best.

>>> from processors.scheduling.formats import builtin_instance
>>> d = decide(builtin_instance("ft06"), DecisionConfig(solvers=("cpsat", "spt"), deadline_s=5))
>>> d.chosen.solver, d.chosen.objective, [round(r.gap_to(d.bound), 3) for r in d.results]
('cpsat', 55.0, [0.0, 0.709])
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from typing import Any

from processors.base import derived_id
from processors.scheduling.base import make_solver, solver_names
from processors.scheduling.model import Budget, Instance, SolveResult, Status

log = logging.getLogger(__name__)

SOURCE = "scheduler"
FAST = frozenset({"fifo", "spt", "edd", "mwkr"})

__all__ = ["Decision", "DecisionConfig", "decide", "plan_record"]


@dataclass(frozen=True)
class DecisionConfig:
    solvers: tuple[str, ...] = ("cpsat", "edd", "mwkr", "spt", "fifo", "sa", "qaoa")
    deadline_s: float = 1.0
    choose: str = "best-feasible"
    seed: int = 0
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Solver name -> keyword options (e.g. ``{"qaoa": {"backend": "fast", "reps": 2}}``)."""
    evaluations: int | None = None
    """QAOA optimizer iterations and the annealer's matching budget (None: the solvers' default)."""

    def __post_init__(self) -> None:
        if self.choose != "best-feasible" and not self.choose.startswith("prefer:"):
            raise ValueError(f"choose must be 'best-feasible' or 'prefer:<solver>', not {self.choose!r}")


@dataclass
class Decision:
    results: list[SolveResult]
    chosen: SolveResult | None
    bound: float | None
    wall_s: float


def decide(instance: Instance, config: DecisionConfig) -> Decision:
    """Run every configured solver on ``instance`` within the deadline and choose (see module doc)."""
    # Import every solver module here, not in a solver thread: with qiskit 2.6, qiskit first
    # imported in a thread that then exits makes later qiskit use in another thread segfault.
    solver_names()
    started = time.perf_counter()
    deadline = started + config.deadline_s
    slots: dict[str, SolveResult] = {}
    futures: dict[str, Future[SolveResult]] = {}
    for name in config.solvers:
        limit = max(0.05, config.deadline_s * 0.9 - (time.perf_counter() - started))
        budget = Budget(time_limit_s=limit, seed=config.seed, evaluations=config.evaluations)
        if name in FAST:
            slots[name] = _run(name, instance, budget, config)
        else:
            futures[name] = _in_thread(name, instance, budget, config)
    for name, fut in futures.items():
        try:
            slots[name] = fut.result(timeout=max(0.0, deadline - time.perf_counter()))
        except FuturesTimeout:
            slots[name] = SolveResult(
                name,
                Status.TIMEOUT,
                wall_s=time.perf_counter() - started,
                note=f"still running at the {config.deadline_s:g} s deadline",
            )
    results = [slots[name] for name in config.solvers]
    bounds = [r.bound for r in results if r.bound is not None and math.isfinite(r.bound)]
    bound = max(bounds) if bounds else None
    return Decision(results, _choose(results, config.choose), bound, time.perf_counter() - started)


def _run(name: str, instance: Instance, budget: Budget, config: DecisionConfig) -> SolveResult:
    began = time.perf_counter()
    try:
        solver = make_solver(name, **dict(config.options.get(name, {})))
        return solver.solve(instance, budget)
    except Exception as exc:  # a solver bug must not lose the request: the others still answer
        log.exception("solver %s failed", name)
        return SolveResult(
            name, Status.ERROR, wall_s=time.perf_counter() - began, note=f"{type(exc).__name__}: {exc}"
        )


def _in_thread(name: str, instance: Instance, budget: Budget, config: DecisionConfig) -> Future[SolveResult]:
    fut: Future[SolveResult] = Future()

    def work() -> None:
        fut.set_result(_run(name, instance, budget, config))

    threading.Thread(target=work, name=f"solver-{name}", daemon=True).start()
    return fut


def _choose(results: Sequence[SolveResult], policy: str) -> SolveResult | None:
    ok = [r for r in results if r.ok]
    if policy.startswith("prefer:"):
        wanted = policy.split(":", 1)[1]
        for r in ok:
            if r.solver == wanted:
                return r
    if not ok:
        return None
    return min(ok, key=lambda r: (r.objective if r.objective is not None else math.inf, ok.index(r)))


def plan_id(request_id: str) -> str:
    """One plan per request: the id does not depend on which solver won (a replay gives the same)."""
    return derived_id("schedule-plan", request_id)


def plan_record(
    request: Mapping[str, Any], instance: Instance, decision: Decision, choose: str, source: str = SOURCE
) -> dict[str, Any]:
    """The ``schedule.plans`` record (plain wire form) answering ``request`` with ``decision``."""
    chosen = decision.chosen
    if chosen is None or chosen.schedule is None:
        raise ValueError("no plan to publish")
    origin = instance.origin_ms
    ops = {op.key: op for op in instance.operations}
    single = {job.job_id for job in instance.jobs if len(job.operations) == 1}
    assignments = [
        {
            "job_id": s.job_id,
            "machine_id": s.machine,
            "start_time": origin + round(s.start * 1000),
            "end_time": origin + round(s.end * 1000),
            "operation_id": "" if s.job_id in single else ops[s.key].op_id,
            "setup_s": float(s.setup_s),
        }
        for s in sorted(chosen.schedule, key=lambda s: (s.start, s.machine, s.key))
    ]
    request_id = str(request["request_id"])
    pid = plan_id(request_id)
    return {
        "event_id": pid,
        "event_time": int(request["event_time"]),
        "source": source,
        "correlation_id": str(request.get("correlation_id") or request_id),
        "plan_id": pid,
        "request_id": request_id,
        "line_id": str(request["line_id"]),
        "solver": chosen.solver,
        "status": "OPTIMAL" if chosen.status is Status.OPTIMAL else "FEASIBLE",
        "objective": chosen.objective,
        "solve_time_ms": round(chosen.wall_s * 1000),
        "assignments": assignments,
        "objective_name": instance.objective.value,
        "bound": decision.bound,
        "chosen_by": choose,
        "comparison": [outcome(r, decision.bound) for r in decision.results],
    }


def outcome(r: SolveResult, bound: float | None) -> dict[str, Any]:
    return {
        "solver": r.solver,
        "status": r.status.value,
        "objective": r.objective,
        "gap": r.gap_to(bound),
        "solve_time_ms": round(r.wall_s * 1000),
        "backend": r.backend,
        "note": r.note,
        "metrics": {k: float(v) for k, v in r.metrics.items() if math.isfinite(float(v))},
    }
