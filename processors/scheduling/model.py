"""The scheduling instance and what solvers return. Pure data, no solver code.

An **instance** is a set of jobs, each a chain of operations (an operation starts after the one
before it in its job has ended, and after any operation named in its ``after``); each operation can
run on one of its eligible machines, with a processing time per machine. Machines may be busy
until some time (in repair, finishing work in progress); a machine set up for one product family
needs ``setup(from, to)`` seconds before an operation of another family. Times are seconds from the
instance's origin (``origin_ms``, epoch milliseconds, the request's time).

Objectives: ``makespan`` (end of the last operation) or ``weighted_tardiness`` (sum over jobs of
weight x lateness past the due time).

>>> inst = Instance.build("tiny", {"j1": [{"m1": 3.0}, {"m2": 2.0}], "j2": [{"m2": 4.0}]})
>>> [op.key for op in inst.operations]
['j1/0', 'j1/1', 'j2/0']
>>> inst.machines
('m1', 'm2')
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from twin.errors import TwinError

__all__ = [
    "Budget",
    "Instance",
    "InstanceError",
    "Job",
    "Objective",
    "Operation",
    "ScheduledOp",
    "SolveResult",
    "Status",
]


class InstanceError(TwinError, ValueError):
    """An instance that cannot be scheduled as given: the message says what is wrong and where."""


class Objective(StrEnum):
    MAKESPAN = "makespan"
    WEIGHTED_TARDINESS = "weighted_tardiness"


class Status(StrEnum):
    """A solver's outcome. Only OPTIMAL and FEASIBLE carry a schedule."""

    OPTIMAL = "OPTIMAL"
    FEASIBLE = "FEASIBLE"
    INFEASIBLE = "INFEASIBLE"
    TIMEOUT = "TIMEOUT"
    UNSUPPORTED = "UNSUPPORTED"
    """The instance does not fit the solver (too many qubits, a feature the formulation lacks)."""
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Operation:
    """One step of a job. ``key`` is ``job_id/op_id`` and unique in the instance."""

    job_id: str
    op_id: str
    index: int
    """Position in its job (0 first)."""
    durations: Mapping[str, float]
    """Eligible machine -> processing seconds."""
    after: tuple[str, ...] = ()
    """Keys of further operations (any job) that must end before this one starts."""

    @property
    def key(self) -> str:
        return f"{self.job_id}/{self.op_id}"

    @property
    def min_duration(self) -> float:
        return min(self.durations.values())


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    operations: tuple[Operation, ...]
    due_s: float | None = None
    weight: float = 1.0
    release_s: float = 0.0
    family: str | None = None
    priority: int = 0


@dataclass(frozen=True)
class Instance:
    """A validated scheduling instance (see the module docstring). Build it with ``Instance.build``
    or a loader in ``processors.scheduling.formats``; the constructor checks everything."""

    name: str
    jobs: tuple[Job, ...]
    machines: tuple[str, ...]
    available_from: Mapping[str, float] = field(default_factory=dict)
    """Machine -> first second it can work (absent: 0). ``math.inf``: not before the horizon."""
    setups: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """(from family, to family) -> setup seconds on any machine; absent pairs need none."""
    initial_family: Mapping[str, str] = field(default_factory=dict)
    """Machine -> family it is set up for now."""
    objective: Objective = Objective.MAKESPAN
    origin_ms: int = 0
    horizon_s: float | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def build(
        cls,
        name: str,
        routes: Mapping[str, Sequence[Mapping[str, float]]],
        *,
        due: Mapping[str, float] | None = None,
        families: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> Instance:
        """An instance from job -> list of {machine: seconds} (one dict per operation, in order)."""
        jobs = []
        for job_id, route in routes.items():
            ops = tuple(
                Operation(job_id, str(i), i, {str(m): float(d) for m, d in step.items()})
                for i, step in enumerate(route)
            )
            jobs.append(
                Job(
                    job_id,
                    ops,
                    due_s=(due or {}).get(job_id),
                    family=(families or {}).get(job_id),
                )
            )
        machines = kw.pop("machines", None) or sorted(
            {m for j in jobs for o in j.operations for m in o.durations}
        )
        return cls(name, tuple(jobs), tuple(machines), **kw)

    @property
    def operations(self) -> list[Operation]:
        return [op for job in self.jobs for op in job.operations]

    def job(self, job_id: str) -> Job:
        for job in self.jobs:
            if job.job_id == job_id:
                return job
        raise KeyError(job_id)

    def setup(self, before: str | None, after: str | None) -> float:
        """Setup seconds between a ``before``-family and an ``after``-family operation on a machine."""
        if before is None or after is None or before == after:
            return 0.0
        return self.setups.get((before, after), 0.0)

    @property
    def is_flexible(self) -> bool:
        return any(len(op.durations) > 1 for op in self.operations)

    @property
    def size(self) -> str:
        """``jobs x machines`` as planners quote instance sizes."""
        return f"{len(self.jobs)}x{len(self.machines)}"

    def available(self, machine: str) -> float:
        return self.available_from.get(machine, 0.0)

    def with_objective(self, objective: Objective) -> Instance:
        return Instance(
            self.name,
            self.jobs,
            self.machines,
            self.available_from,
            self.setups,
            self.initial_family,
            objective,
            self.origin_ms,
            self.horizon_s,
        )


def _validate(inst: Instance) -> None:  # noqa: PLR0912 - one check per rule, read top to bottom
    if not inst.jobs:
        raise InstanceError(f"instance {inst.name!r} has no jobs")
    machines = set(inst.machines)
    if len(machines) != len(inst.machines):
        raise InstanceError(f"instance {inst.name!r} names a machine twice")
    seen_jobs: set[str] = set()
    keys: dict[str, Operation] = {}
    for job in inst.jobs:
        if job.job_id in seen_jobs:
            raise InstanceError(f"job {job.job_id!r} appears twice")
        seen_jobs.add(job.job_id)
        if not job.operations:
            raise InstanceError(f"job {job.job_id!r} has no operations")
        if not math.isfinite(job.weight) or job.weight < 0:
            raise InstanceError(f"job {job.job_id!r}: weight must be >= 0, got {job.weight}")
        if not math.isfinite(job.release_s) or job.release_s < 0:
            raise InstanceError(f"job {job.job_id!r}: release must be >= 0 s, got {job.release_s}")
        for op in job.operations:
            if op.key in keys:
                raise InstanceError(f"operation {op.key!r} appears twice")
            keys[op.key] = op
            if not op.durations:
                raise InstanceError(f"operation {op.key!r} has no eligible machine")
            for m, d in op.durations.items():
                if m not in machines:
                    raise InstanceError(f"operation {op.key!r} names unknown machine {m!r}")
                if not math.isfinite(d) or d < 0:
                    raise InstanceError(f"operation {op.key!r} on {m!r}: duration must be >= 0 s, got {d}")
    for m, t in inst.available_from.items():
        if m not in machines:
            raise InstanceError(f"availability names unknown machine {m!r}")
        if math.isnan(t) or t < 0:
            raise InstanceError(f"machine {m!r}: available_from must be >= 0 s, got {t}")
    for m in inst.initial_family:
        if m not in machines:
            raise InstanceError(f"initial family names unknown machine {m!r}")
    for pair, s in inst.setups.items():
        if not math.isfinite(s) or s < 0:
            raise InstanceError(f"setup {pair[0]}->{pair[1]} must be >= 0 s, got {s}")
    for op in keys.values():
        for k in op.after:
            if k not in keys:
                raise InstanceError(f"operation {op.key!r} must follow unknown operation {k!r}")
    cycle = _find_cycle(inst)
    if cycle:
        raise InstanceError("precedences form a cycle: " + " -> ".join(cycle))


def predecessors(inst: Instance) -> dict[str, list[str]]:
    """Operation key -> keys that must end before it starts (its job predecessor and ``after``)."""
    out: dict[str, list[str]] = {}
    for job in inst.jobs:
        prev: str | None = None
        for op in job.operations:
            out[op.key] = ([prev] if prev else []) + list(op.after)
            prev = op.key
    return out


def topological_order(inst: Instance) -> list[str]:
    """Operation keys so that every operation comes after its predecessors (ties: job order)."""
    order = _toposort(predecessors(inst))
    assert len(order) == len(inst.operations)  # validated at construction: no cycle
    return order


def _toposort(preds: Mapping[str, Iterable[str]]) -> list[str]:
    """Kahn's order of the keys of ``preds``; shorter than ``preds`` when there is a cycle."""
    indeg = {k: len(set(v)) for k, v in preds.items()}
    succ: dict[str, list[str]] = {k: [] for k in preds}
    for k, v in preds.items():
        for p in set(v):
            succ[p].append(k)
    ready = deque(k for k in preds if indeg[k] == 0)
    order: list[str] = []
    while ready:
        k = ready.popleft()
        order.append(k)
        for s in succ[k]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return order


def _find_cycle(inst: Instance) -> list[str]:
    preds = predecessors(inst)
    left = set(preds) - set(_toposort(preds))
    if not left:
        return []
    # Every operation Kahn's order left out has a predecessor left out too: walking them from any
    # of them must come back to one already visited, and that stretch is a cycle.
    node = min(left)
    path: list[str] = []
    while node not in path:
        path.append(node)
        node = next(p for p in preds[node] if p in left)
    return list(reversed([*path[path.index(node) :], node]))


@dataclass(frozen=True, slots=True)
class ScheduledOp:
    """One operation placed on a machine: seconds from the instance origin."""

    key: str
    job_id: str
    machine: str
    start: float
    end: float
    setup_s: float = 0.0
    """Setup done on the machine right before ``start``."""


@dataclass(frozen=True, slots=True)
class Budget:
    """What a solver may spend on one instance."""

    time_limit_s: float = 10.0
    seed: int = 0
    evaluations: int | None = None
    """Objective evaluations (QAOA) or samples (annealing): the quantum-vs-classical budget."""


@dataclass
class SolveResult:
    """A solver's answer: status, schedule (for OPTIMAL/FEASIBLE), its objective, and metrics."""

    solver: str
    status: Status
    schedule: list[ScheduledOp] | None = None
    objective: float | None = None
    bound: float | None = None
    """A proven lower bound on the objective (CP-SAT), when the solver has one."""
    wall_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    """Solver-specific numbers: QAOA's qubits, depth, P(feasible), ...; CP-SAT's branches."""
    backend: str | None = None
    note: str = ""
    """Why a solver did not answer, or how it got its answer (repair used, ...)."""

    @property
    def ok(self) -> bool:
        return self.status in (Status.OPTIMAL, Status.FEASIBLE) and self.schedule is not None

    def gap_to(self, bound: float | None) -> float | None:
        """Relative gap of this objective to ``bound`` (0.0 = optimal); None without both."""
        if self.objective is None or bound is None:
            return None
        if bound <= 0:
            return 0.0 if self.objective <= 1e-9 else None
        gap = (self.objective - bound) / bound
        # A bound read back from integer ticks may sit a hair above the objective in seconds.
        return 0.0 if -1e-5 < gap < 0 else gap
