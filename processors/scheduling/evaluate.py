"""Check a schedule against its instance, score it, and build schedules from priorities.

``check`` is the one judge of feasibility every solver's answer goes through (QAOA samples
included): each operation once, on an eligible machine, for its processing time, after its
predecessors, its job's release and its machine's availability, without overlap, with the setup
its machine needs between families.

``build_schedule`` is the schedule generation scheme shared by the dispatch rules, annealing and
QAOA repair: Giffler-Thompson active schedules. At each step, among the operations whose
predecessors are placed, take the earliest possible completion C* (on its best machine, or the
machine an assignment fixes); the conflict set is the operations that could start on that machine
before C*; ``priority`` picks one of them (lowest value first).

>>> from processors.scheduling.model import Instance
>>> inst = Instance.build("t", {"a": [{"m1": 3.0}, {"m2": 2.0}], "b": [{"m2": 4.0}, {"m1": 1.0}]})
>>> sched = build_schedule(inst, lambda op, ctx: ctx.start)
>>> check(inst, sched), objective(inst, sched)
([], 6.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from processors.scheduling.model import Instance, Objective, Operation, ScheduledOp, predecessors

EPS = 1e-6

__all__ = ["Candidate", "build_schedule", "check", "job_ends", "objective", "tardiness"]


def job_ends(schedule: Sequence[ScheduledOp]) -> dict[str, float]:
    ends: dict[str, float] = {}
    for s in schedule:
        ends[s.job_id] = max(ends.get(s.job_id, 0.0), s.end)
    return ends


def tardiness(inst: Instance, schedule: Sequence[ScheduledOp]) -> float:
    ends = job_ends(schedule)
    return sum(
        job.weight * max(0.0, ends.get(job.job_id, 0.0) - job.due_s)
        for job in inst.jobs
        if job.due_s is not None
    )


def objective(inst: Instance, schedule: Sequence[ScheduledOp]) -> float:
    """The instance's objective of ``schedule`` (makespan or weighted tardiness, seconds)."""
    if inst.objective is Objective.WEIGHTED_TARDINESS:
        return tardiness(inst, schedule)
    return max((s.end for s in schedule), default=0.0)


def check(inst: Instance, schedule: Sequence[ScheduledOp]) -> list[str]:  # noqa: PLR0912 - one rule each
    """Everything that makes ``schedule`` infeasible for ``inst`` (empty: feasible)."""
    problems: list[str] = []
    ops = {op.key: op for op in inst.operations}
    placed: dict[str, ScheduledOp] = {}
    for s in schedule:
        op = ops.get(s.key)
        if op is None:
            problems.append(f"{s.key}: not an operation of the instance")
            continue
        if s.key in placed:
            problems.append(f"{s.key}: scheduled twice")
            continue
        placed[s.key] = s
        d = op.durations.get(s.machine)
        if d is None:
            problems.append(f"{s.key}: machine {s.machine} cannot do it")
            continue
        if abs((s.end - s.start) - d) > EPS:
            problems.append(f"{s.key}: lasts {s.end - s.start:g} s on {s.machine}, needs {d:g} s")
        if s.start - s.setup_s < inst.available(s.machine) - EPS:
            problems.append(
                f"{s.key}: starts before {s.machine} is available ({inst.available(s.machine):g} s)"
            )
    for k in ops:
        if k not in placed:
            problems.append(f"{k}: not scheduled")
    preds = predecessors(inst)
    for job in inst.jobs:
        for op in job.operations:
            here = placed.get(op.key)
            if here is None:
                continue
            if here.start < job.release_s - EPS:
                problems.append(f"{op.key}: starts before its job's release")
            for p in preds[op.key]:
                ps = placed.get(p)
                if ps is not None and here.start < ps.end - EPS:
                    problems.append(f"{op.key}: starts at {here.start:g} before {p} ends at {ps.end:g}")
    family = {job.job_id: job.family for job in inst.jobs}
    by_machine: dict[str, list[ScheduledOp]] = {}
    for s in placed.values():
        by_machine.setdefault(s.machine, []).append(s)
    for m, items in by_machine.items():
        items.sort(key=lambda s: (s.start, s.end))
        prev_family = inst.initial_family.get(m)
        prev: ScheduledOp | None = None
        for s in items:
            need = inst.setup(prev_family, family[s.job_id])
            free = prev.end if prev is not None else inst.available(m)
            if s.start < free + need - EPS:
                what = (
                    f"overlaps {prev.key}"
                    if prev is not None and s.start < prev.end - EPS
                    else "lacks its setup"
                )
                problems.append(f"{s.key} on {m}: {what} (needs {need:g} s setup after {free:g})")
            prev_family = family[s.job_id] if family[s.job_id] is not None else prev_family
            prev = s
    return problems


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a priority rule sees of one operation it may schedule next."""

    op: Operation
    machine: str
    start: float
    end: float
    setup_s: float
    remaining_work: float
    """Sum of the minimum processing times of this operation and those after it in its job."""
    ops_left: int
    due_s: float | None
    arrival: float
    """When the operation became ready (its predecessors' end, or its job's release)."""


Priority = Callable[[Operation, Candidate], float | tuple[float, ...]]


def build_schedule(
    inst: Instance,
    priority: Priority,
    assignment: Mapping[str, str] | None = None,
) -> list[ScheduledOp]:
    """A Giffler-Thompson active schedule (see the module docstring); deterministic."""
    preds = predecessors(inst)
    family = {job.job_id: job.family for job in inst.jobs}
    job_of = {job.job_id: job for job in inst.jobs}
    remaining: dict[str, tuple[float, int]] = {}
    for job in inst.jobs:
        total = 0.0
        for count, op in enumerate(reversed(job.operations), start=1):
            total += op.min_duration
            remaining[op.key] = (total, count)
    machine_free = {m: inst.available(m) for m in inst.machines}
    machine_family: dict[str, str | None] = {m: inst.initial_family.get(m) for m in inst.machines}
    ends: dict[str, float] = {}
    waiting = {op.key: op for op in inst.operations}
    out: list[ScheduledOp] = []
    order = {op.key: i for i, op in enumerate(inst.operations)}
    while waiting:
        cands: list[Candidate] = []
        for k, op in waiting.items():
            if any(p not in ends for p in preds[k]):
                continue
            job = job_of[op.job_id]
            ready = max([job.release_s, *(ends[p] for p in preds[k])])
            machines = [assignment[k]] if assignment and k in assignment else list(op.durations)
            for m in machines:
                setup = inst.setup(machine_family[m], family[op.job_id])
                start = max(ready, machine_free[m] + setup)
                work, left = remaining[k]
                cands.append(
                    Candidate(op, m, start, start + op.durations[m], setup, work, left, job.due_s, ready)
                )
        best_end = min(c.end for c in cands)
        pivot = min((c for c in cands if c.end <= best_end + EPS), key=lambda c: (c.end, order[c.op.key]))
        conflict = [c for c in cands if c.machine == pivot.machine and c.start < best_end - EPS]
        # For flexible operations keep, per operation, its candidate on this machine only if that is
        # also its earliest completion (it may do better elsewhere).
        chosen = min(conflict or [pivot], key=lambda c: (priority(c.op, c), c.start, order[c.op.key]))
        out.append(
            ScheduledOp(
                chosen.op.key, chosen.op.job_id, chosen.machine, chosen.start, chosen.end, chosen.setup_s
            )
        )
        ends[chosen.op.key] = chosen.end
        machine_free[chosen.machine] = chosen.end
        if family[chosen.op.job_id] is not None:
            machine_family[chosen.machine] = family[chosen.op.job_id]
        del waiting[chosen.op.key]
    return out
