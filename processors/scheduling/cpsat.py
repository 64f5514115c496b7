"""CP-SAT (OR-Tools) on the native model: the solver a planner trusts, and the bound the others'
gaps are measured against.

Model: per operation and eligible machine an optional interval (one of them present), machine
no-overlap, job chains and ``after`` precedences, release and machine availability. Sequence-
dependent setups use a circuit per machine (a dummy node stands for the machine's state before the
first operation, so the initial family's setup is charged too). Times are integers in the instance's
resolution: whole seconds when every number is whole, milliseconds otherwise. The search starts from
the best dispatch-rule schedule (a hint), so a short time limit still returns a good plan.

>>> from processors.scheduling.formats import builtin_instance
>>> from processors.scheduling.model import Budget
>>> r = CpSatSolver().solve(builtin_instance("ft06"), Budget(time_limit_s=10))
>>> r.status.value, r.objective, r.bound
('OPTIMAL', 55.0, 55.0)
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

from processors.scheduling.base import finish, register
from processors.scheduling.model import (
    Budget,
    Instance,
    Objective,
    ScheduledOp,
    SolveResult,
    Status,
    predecessors,
)

__all__ = ["CpSatSolver"]

PRESOLVE_MAX_OPERATIONS = 60
PRESOLVE_MIN_LIMIT_S = 3.0


def _scale(inst: Instance) -> int:
    values = [d for op in inst.operations for d in op.durations.values()]
    values += list(inst.available_from.values()) + list(inst.setups.values())
    values += [j.due_s for j in inst.jobs if j.due_s is not None] + [j.release_s for j in inst.jobs]
    finite = [v for v in values if math.isfinite(v)]
    return 1 if all(float(v).is_integer() for v in finite) else 1000


class CpSatSolver:
    name = "cpsat"

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers

    def solve(self, instance: Instance, budget: Budget) -> SolveResult:  # noqa: PLR0912, PLR0915 - the model
        from ortools.sat.python import cp_model

        started = time.perf_counter()
        inst = instance
        k = _scale(inst)

        def ticks(seconds: float) -> int:
            # Up, never down: durations, setups and earliest starts in ticks are never shorter or
            # earlier than the real ones, so the schedule read back in seconds stays feasible.
            return math.ceil(seconds * k - 1e-9)

        family = {j.job_id: j.family for j in inst.jobs}
        usable = [m for m in inst.machines if math.isfinite(inst.available(m))]
        horizon = max((ticks(inst.available(m)) for m in usable), default=0)
        horizon += max((ticks(j.release_s) for j in inst.jobs), default=0)
        horizon += sum(ticks(max(op.durations.values())) for op in inst.operations)
        horizon += len(inst.operations) * max((ticks(s) for s in inst.setups.values()), default=0)

        model = cp_model.CpModel()
        start: dict[str, Any] = {}
        end: dict[str, Any] = {}
        present: dict[tuple[str, str], Any] = {}
        by_machine: dict[str, list[tuple[str, Any, Any, Any, str | None]]] = {m: [] for m in inst.machines}
        for job in inst.jobs:
            for op in job.operations:
                key = op.key
                s = model.new_int_var(ticks(job.release_s), horizon, f"s[{key}]")
                e = model.new_int_var(0, horizon, f"e[{key}]")
                start[key], end[key] = s, e
                options = [m for m in op.durations if m in usable]
                if not options:
                    return SolveResult(
                        self.name,
                        Status.INFEASIBLE,
                        wall_s=time.perf_counter() - started,
                        note=f"{key}: none of its machines is available",
                    )
                lits = []
                for m in options:
                    d = ticks(op.durations[m])
                    lit = model.new_constant(1) if len(options) == 1 else model.new_bool_var(f"x[{key},{m}]")
                    iv = model.new_optional_interval_var(s, d, e, lit, f"i[{key},{m}]")
                    model.add(s >= ticks(inst.available(m))).only_enforce_if(lit)
                    present[key, m] = lit
                    lits.append(lit)
                    by_machine[m].append((key, lit, iv, s, family[job.job_id]))
                model.add_exactly_one(lits)
                _ = e
        preds_of = predecessors(inst)
        for key, preds in preds_of.items():
            for p in preds:
                model.add(start[key] >= end[p])
        setups = bool(inst.setups)
        arcs: dict[tuple[str | None, str | None], Any] = {}
        for m, items in by_machine.items():
            if not items:
                continue
            model.add_no_overlap([iv for _, _, iv, _, _ in items])
            if setups:
                arcs.update(self._circuit(model, inst, m, items, end, ticks))
        extra: dict[str, tuple[Any, str]] = {}

        if inst.objective is Objective.WEIGHTED_TARDINESS:
            terms = []
            for job in inst.jobs:
                if job.due_s is None:
                    continue
                last = job.operations[-1].key
                # A due time already past (negative) makes lateness exceed the horizon.
                late = model.new_int_var(0, horizon + max(0, -ticks(job.due_s)), f"late[{job.job_id}]")
                model.add(late >= end[last] - ticks(job.due_s))
                extra[f"late:{job.job_id}"] = (late, last)
                terms.append(round(job.weight * 100) * late)
            model.minimize(sum(terms))
            weight_scale = 100
        else:
            makespan = model.new_int_var(0, horizon, "makespan")
            model.add_max_equality(makespan, list(end.values()))
            model.minimize(makespan)
            weight_scale = 1
            extra["makespan"] = (makespan, "")
        _hint(model, inst, ticks, start, end, present, arcs, extra)

        solver = cp_model.CpSolver()
        # The limit counts from the call: building the model and the hint used part of it already.
        solver.parameters.max_time_in_seconds = max(
            0.01, budget.time_limit_s - (time.perf_counter() - started)
        )
        solver.parameters.num_workers = self.workers
        solver.parameters.random_seed = budget.seed
        if (
            setups
            and len(inst.operations) > PRESOLVE_MAX_OPERATIONS
            and budget.time_limit_s < PRESOLVE_MIN_LIMIT_S
        ):
            # Presolving the setup circuits of a large request took ~1 s alone (83 operations of the
            # shop line): without it the complete hint is the first solution at once and the search
            # improves on it within a 1 s deadline.
            solver.parameters.cp_model_presolve = False
        # Not repair_hint: with it OR-Tools 9.15 can abort the process (or-tools issue 5025,
        # "Check failed: heuristics.fixed_search != nullptr", seen here under load); a plain hint
        # still guides the first solutions.
        code = solver.solve(model)
        wall = time.perf_counter() - started
        metrics = {
            "branches": float(solver.num_branches),
            "conflicts": float(solver.num_conflicts),
            "variables": float(len(model.proto.variables)),
        }
        if code == cp_model.INFEASIBLE:
            return SolveResult(
                self.name, Status.INFEASIBLE, wall_s=wall, metrics=metrics, note="proven infeasible"
            )
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return SolveResult(
                self.name,
                Status.TIMEOUT,
                wall_s=wall,
                metrics=metrics,
                note=f"no plan within {budget.time_limit_s:g} s",
            )
        schedule = []
        for job in inst.jobs:
            for op in job.operations:
                for m in op.durations:
                    chosen = present.get((op.key, m))
                    if chosen is not None and solver.boolean_value(chosen):
                        st = solver.value(start[op.key]) / k
                        schedule.append(ScheduledOp(op.key, job.job_id, m, st, st + op.durations[m]))
        schedule = _with_setups(inst, schedule)
        bound = solver.best_objective_bound / (k * weight_scale)
        status = Status.OPTIMAL if code == cp_model.OPTIMAL else Status.FEASIBLE
        result = finish(self.name, inst, schedule, started, status, bound=bound, metrics=metrics)
        if result.objective is not None and result.objective > 0:
            result.metrics["gap"] = max(0.0, (result.objective - bound) / result.objective)
        return result

    @staticmethod
    def _circuit(
        model: Any, inst: Instance, machine: str, items: list[Any], end: dict[str, Any], ticks: Any
    ) -> dict[tuple[str | None, str | None], Any]:
        """Sequence the machine's operations with setups: arc i->j means j directly follows i.
        Returns the arc literals by (operation key or None for the machine's start/end node), keyed
        ``machine`` too through the operation keys' machine prefix (for the hint)."""
        arcs = []
        named: dict[tuple[str | None, str | None], Any] = {}
        initial = inst.initial_family.get(machine)
        avail = ticks(inst.available(machine))
        for i, (ki, lit_i, _, s_i, f_i) in enumerate(items, start=1):
            first = model.new_bool_var("")
            arcs.append((0, i, first))
            named[None, f"{machine}|{ki}"] = first
            model.add(s_i >= avail + ticks(inst.setup(initial, f_i))).only_enforce_if(first)
            last = model.new_bool_var("")
            arcs.append((i, 0, last))
            named[f"{machine}|{ki}", None] = last
            arcs.append((i, i, ~lit_i))
            for j, (kj, lit_j, _, s_j, f_j) in enumerate(items, start=1):
                if i == j:
                    continue
                follows = model.new_bool_var("")
                arcs.append((i, j, follows))
                named[f"{machine}|{ki}", f"{machine}|{kj}"] = follows
                model.add_implication(follows, lit_i)
                model.add_implication(follows, lit_j)
                model.add(s_j >= end[ki] + ticks(inst.setup(f_i, f_j))).only_enforce_if(follows)
        model.add_circuit(arcs)
        return named


def _hint(  # noqa: PLR0912 - choices, sequences, arcs and objective variables, in turn
    model: Any,
    inst: Instance,
    ticks: Any,
    start: dict[str, Any],
    end: dict[str, Any],
    present: dict[tuple[str, str], Any],
    arcs: dict[tuple[str | None, str | None], Any],
    extra: dict[str, tuple[Any, str]],
) -> None:
    """A complete, feasible hint from the best dispatch rule: its machine choices and sequences,
    with start times recomputed in ticks (rounded up, like the model), every arc literal and the
    objective variables set. CP-SAT then has a solution from its first moment, so even a short
    time limit returns a plan at least as good as the best rule's."""
    from processors.scheduling.evaluate import build_schedule, objective
    from processors.scheduling.rules import RULES

    best = None
    for rule in RULES.values():
        sched = build_schedule(inst, rule)
        value = objective(inst, sched)
        if best is None or value < best[0]:
            best = (value, sched)
    if best is None:
        return
    ops = {op.key: op for op in inst.operations}
    job_of = {j.job_id: j for j in inst.jobs}
    preds = predecessors(inst)
    end_t: dict[str, int] = {}
    free: dict[str, int] = {}
    last: dict[str, str | None] = {}
    family: dict[str, str | None] = {}
    sequence: dict[str, list[str]] = {}
    for s in sorted(best[1], key=lambda s: (s.start, s.end, s.key)):
        m, job = s.machine, job_of[s.job_id]
        if m in free:
            ready = free[m] + ticks(inst.setup(family[m], job.family))
        else:
            ready = ticks(inst.available(m)) + ticks(inst.setup(inst.initial_family.get(m), job.family))
        st = max([ready, ticks(job.release_s), *(end_t[p] for p in preds[s.key])])
        end_t[s.key] = st + ticks(ops[s.key].durations[m])
        free[m] = end_t[s.key]
        family[m] = job.family  # as the circuit charges it: from the previous operation's family
        sequence.setdefault(m, []).append(s.key)
        last[m] = s.key
        model.add_hint(start[s.key], st)
        model.add_hint(end[s.key], end_t[s.key])
    flexible = {op.key for op in inst.operations if len(op.durations) > 1}
    chosen = {s.key: s.machine for s in best[1]}
    for (key, m), lit in present.items():
        if key in flexible:  # single-machine operations use one shared constant literal
            model.add_hint(lit, chosen[key] == m)
    used: set[tuple[str | None, str | None]] = set()
    for m, keys in sequence.items():
        path = [None, *(f"{m}|{k}" for k in keys), None]
        used.update(itertools.pairwise(path))
    for pair, lit in arcs.items():
        model.add_hint(lit, pair in used)
    for name, (var, key) in extra.items():
        if name == "makespan":
            model.add_hint(var, max(end_t.values(), default=0))
        else:
            job = job_of[name.split(":", 1)[1]]
            assert job.due_s is not None
            model.add_hint(var, max(0, end_t[key] - ticks(job.due_s)))


def _with_setups(inst: Instance, schedule: list[ScheduledOp]) -> list[ScheduledOp]:
    """Fill in each operation's setup from the machine's previous family (for the plan record)."""
    family = {j.job_id: j.family for j in inst.jobs}
    out = []
    last: dict[str, str | None] = dict(inst.initial_family)
    for s in sorted(schedule, key=lambda s: (s.machine, s.start)):
        f = family[s.job_id]
        out.append(
            ScheduledOp(s.key, s.job_id, s.machine, s.start, s.end, inst.setup(last.get(s.machine), f))
        )
        if f is not None:
            last[s.machine] = f
    return sorted(out, key=lambda s: (s.start, s.machine))


register("cpsat", CpSatSolver)
