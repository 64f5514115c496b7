"""Scheduling instances as QUBOs (qiskit-optimization ``QuadraticProgram``), and samples back to plans.

QAOA (``quantum.py``) and simulated annealing (``anneal.py``) minimise the *same* QUBO built here,
and every sample they return goes through the same ``decode``: one-hot constraints checked, a
violated sample repaired deterministically, the plan checked by ``evaluate.check``.

Two formulations:

**assignment** (any instance; the only one for flexible shops): a binary ``x[o,m]`` per operation
``o`` and eligible machine ``m`` (operations with one eligible machine are fixed: no variable), one
``sum_m x[o,m] == 1`` per operation, and the objective

    sum_m (available_from(m) + fixed load(m) + sum_o d[o,m] * x[o,m])^2

The sum of squared machine loads is the QUBO surrogate of the min-max load: max() is not
quadratic, while squares penalise the largest loads most and are minimised by balanced loads.
It is a surrogate, not the same objective: the least sum of squares may have a larger maximum
(loads 6,2,2 beat 5,5,0), so ``optimum`` below enumerates plans, not QUBO energies. A sample is
decoded to a machine per operation, then to a plan by ``build_schedule`` (most work remaining
first). With single-operation jobs and no releases or setups (parallel machines) that plan's
makespan is the largest load, so the best plan the formulation can express is the true optimum.

**time-indexed** (small non-flexible job shops with integral times): a binary ``x[o,t]`` = "``o``
starts at ``t``" for ``t`` in ``[earliest start, T - tail]`` (``tail``: ``o``'s duration plus its
longest chain of successors; ``T``: a horizon, by default the makespan of a rule-based active
schedule, so a feasible plan exists), one ``sum_t x[o,t] == 1`` per operation, and penalty pairs
``P * x[a,t] * x[b,t']`` for precedence violations (``t' < t + d_a``) and machine overlaps. The
objective is exact, not a surrogate: for makespan, ``sum over sink operations (no successor) of
w(t + d)`` with ``w(c) = (L+1)^(c - c_min)`` and ``L`` the number of sinks; a schedule with a smaller
makespan then always has a smaller sum (``L * (L+1)^k < (L+1)^(k+1)``), at the price of a dynamic
range of ``(L+1)^(T - c_min)`` in the coefficients. For weighted tardiness it is the tardiness
itself (``w_j * max(0, t + d - due_j)`` on each job's last operation), linear in ``x``. A sample
whose starts pass ``evaluate.check`` is the plan as decoded; otherwise it is repaired by a left-shift:
``build_schedule`` with the decoded start times as priorities.

Penalty weights (``P``) are chosen so that every QUBO ground state is feasible: the objective is
non-negative, and ``P`` exceeds what dropping a constraint can save (see ``_assignment_penalty`` and
``_time_indexed``). Variable ``i`` of the QUBO is qubit ``i`` of the QAOA circuit.

>>> from processors.scheduling.model import Instance
>>> inst = Instance.build("p", {"a": [{"m1": 3, "m2": 3}], "b": [{"m1": 2, "m2": 2}]})
>>> prob = build(inst, "assignment")
>>> prob.num_qubits, prob.variables[0]
(4, ('a/0', 'm1'))
>>> d = prob.decode([1, 0, 0, 1])
>>> d.objective, d.feasible
(3.0, True)
>>> d = prob.decode([1, 0, 1, 0])
>>> d.objective, d.feasible
(5.0, True)
>>> prob.decode([0, 0, 0, 1]).repaired
True
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from qiskit_optimization import QuadraticProgram
from qiskit_optimization.converters import QuadraticProgramToQubo

from processors.scheduling.evaluate import Candidate, build_schedule, check, objective
from processors.scheduling.model import (
    Instance,
    Objective,
    Operation,
    ScheduledOp,
    predecessors,
    topological_order,
)
from twin.errors import TwinError

__all__ = [
    "DEFAULT_EVALUATIONS",
    "ENUMERATION_MAX_QUBITS",
    "FORMULATIONS",
    "Decoded",
    "FormulationError",
    "QuboProblem",
    "SampleStats",
    "assignment_qubo",
    "build",
    "choose_formulation",
    "default_horizon",
    "qubit_count",
    "sample_stats",
    "time_indexed_qubo",
    "time_indexed_reason",
    "tts99",
]

Formulation = Literal["assignment", "time-indexed"]
FORMULATIONS: tuple[Formulation, ...] = ("assignment", "time-indexed")
ENUMERATION_MAX_QUBITS = 22
"""Up to this many variables ``energies`` and ``optimum`` enumerate exhaustively (2^22 energies: 32 MiB)."""
DEFAULT_EVALUATIONS = 100
"""QAOA's objective evaluations, and the annealer's reads, when the budget does not say."""
_MAX_PLANS = 20_000
"""Most one-hot combinations ``optimum`` decodes (at 22 qubits there are at most 3^6 x 2^2 = 2916)."""


class FormulationError(TwinError, ValueError):
    """The instance does not fit a formulation (the message says why); solvers answer UNSUPPORTED."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """A sample turned into a plan."""

    schedule: list[ScheduledOp]
    objective: float
    feasible: bool
    """The sample itself met every constraint: the plan is the sample, unrepaired."""

    @property
    def repaired(self) -> bool:
        return not self.feasible


@dataclass
class QuboProblem:
    """One instance as a QUBO. ``qubo`` is what the samplers minimise; ``program`` keeps the
    one-hot constraints as constraints (``qubo`` = ``program`` with them as penalties)."""

    formulation: Formulation
    instance: Instance
    program: QuadraticProgram
    qubo: QuadraticProgram
    variables: list[tuple[str, str | int]]
    """Variable (= qubit) index -> (operation key, machine) or (operation key, start second)."""
    groups: list[list[int]]
    """One-hot groups: the variables of one operation."""
    penalty: float
    horizon: int | None = None
    fixed: dict[str, str] = field(default_factory=dict)
    """Assignment formulation: operations with one eligible machine -> that machine."""
    _cache: dict[bytes, Decoded] = field(default_factory=dict, repr=False)

    @property
    def num_qubits(self) -> int:
        return len(self.variables)

    # -- the QUBO as arrays
    def arrays(self) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        """``(h, J, c)``: energy(x) = c + h.x + x.J.x with ``J`` strictly upper triangular."""
        obj = self.qubo.objective
        n = self.num_qubits
        h = np.asarray(obj.linear.to_array(), dtype=np.float64).copy() if n else np.zeros(0)
        q = np.asarray(obj.quadratic.to_array(symmetric=True), dtype=np.float64) if n else np.zeros((0, 0))
        h += np.diag(q)  # x_i^2 = x_i
        j = np.triu(q, 1) * 2.0
        return h, j, float(obj.constant)

    def energy(self, x: Sequence[int] | NDArray[Any]) -> float:
        return float(self.qubo.objective.evaluate(np.asarray(x, dtype=float)))

    def energies(self) -> NDArray[np.float64]:
        """The QUBO energy of all 2^n bitstrings (index bit i = variable i), by numpy.

        Split the variables into halves: ``E[hi, lo] = E_hi[hi] + E_lo[lo] + X_hi J_cross X_lo^T``,
        one matrix product instead of a pass over 2^n values per coefficient."""
        n = self.num_qubits
        if n > ENUMERATION_MAX_QUBITS:
            raise FormulationError(f"{n} variables: enumeration stops at {ENUMERATION_MAX_QUBITS}")
        h, j, c = self.arrays()
        lo = n // 2
        x_lo = _bits(lo)
        x_hi = _bits(n - lo)
        e_lo = x_lo @ h[:lo] + np.einsum("ki,ij,kj->k", x_lo, j[:lo, :lo], x_lo)
        e_hi = x_hi @ h[lo:] + np.einsum("ki,ij,kj->k", x_hi, j[lo:, lo:], x_hi)
        cross = (x_hi @ j[:lo, lo:].T) @ x_lo.T
        return np.asarray((c + e_hi[:, None] + e_lo[None, :] + cross).reshape(-1), dtype=np.float64)

    # -- samples to plans
    def decode(self, x: Sequence[int] | NDArray[Any]) -> Decoded:
        """The plan a sample stands for; repaired (``feasible`` False) if it breaks a constraint."""
        bits = np.asarray(np.round(np.asarray(x, dtype=float)), dtype=np.uint8)
        if bits.size != self.num_qubits:
            raise ValueError(f"sample has {bits.size} bits, the QUBO {self.num_qubits} variables")
        key = bits.tobytes()
        hit = self._cache.get(key)
        if hit is None:
            if self.formulation == "assignment":
                hit = self._decode_assignment(bits)
            else:
                hit = self._decode_time_indexed(bits)
            self._cache[key] = hit
        return hit

    def _decode_assignment(self, bits: NDArray[np.uint8]) -> Decoded:
        inst = self.instance
        ops = {op.key: op for op in inst.operations}
        assignment = dict(self.fixed)
        load = {m: inst.available(m) for m in inst.machines}
        for k, m in self.fixed.items():
            load[m] += ops[k].durations[m]
        violated: list[tuple[str, list[str]]] = []
        for group in self.groups:
            key = str(self.variables[group[0]][0])
            chosen = [str(self.variables[i][1]) for i in group if bits[i]]
            if len(chosen) == 1:
                assignment[key] = chosen[0]
                load[chosen[0]] += ops[key].durations[chosen[0]]
            else:
                violated.append((key, chosen))
        order = {m: i for i, m in enumerate(inst.machines)}
        for key, chosen in violated:
            op = ops[key]
            # Least load after adding it, among the machines the sample chose (all eligible if none).
            cands = chosen or [str(self.variables[i][1]) for i in self._group_of(key)]
            best = min(cands, key=lambda m: (load[m] + op.durations[m], order[m]))
            assignment[key] = best
            load[best] += op.durations[best]
        schedule = build_schedule(inst, _most_work_remaining, assignment)
        return Decoded(schedule, objective(inst, schedule), not violated)

    def _group_of(self, key: str) -> list[int]:
        return next(g for g in self.groups if self.variables[g[0]][0] == key)

    def _decode_time_indexed(self, bits: NDArray[np.uint8]) -> Decoded:
        inst = self.instance
        starts: dict[str, float] = {}
        ok = True
        for group in self.groups:
            key = str(self.variables[group[0]][0])
            chosen = [int(self.variables[i][1]) for i in group if bits[i]]
            if len(chosen) != 1:
                ok = False
            starts[key] = float(min(chosen)) if chosen else float(self.variables[group[0]][1])
        if ok:
            schedule = []
            for job in inst.jobs:
                for op in job.operations:
                    m, d = next(iter(op.durations.items()))
                    schedule.append(ScheduledOp(op.key, job.job_id, m, starts[op.key], starts[op.key] + d))
            schedule.sort(key=lambda s: (s.start, s.key))
            if not check(inst, schedule):
                return Decoded(schedule, objective(inst, schedule), True)
        # Left-shift repair: an active schedule that follows the decoded start order.
        repaired = build_schedule(inst, lambda op, c: (starts[op.key], -c.remaining_work))
        return Decoded(repaired, objective(inst, repaired), False)

    def one_hot_combinations(self) -> int:
        return math.prod(len(g) for g in self.groups)

    def optimum(self) -> float | None:
        """The best objective of a plan decoded from a sample that needs no repair, over all
        one-hot combinations (only those can be feasible); None above ``ENUMERATION_MAX_QUBITS``
        variables or ``_MAX_PLANS`` combinations. Time-indexed: the true optimum (within the
        horizon, which holds it). Assignment: the best plan the formulation expresses (the true
        optimum for parallel machines)."""
        if self.num_qubits > ENUMERATION_MAX_QUBITS or self.one_hot_combinations() > _MAX_PLANS:
            return None
        best: float | None = None
        x = np.zeros(self.num_qubits, dtype=np.uint8)
        for combo in itertools.product(*self.groups):
            x[:] = 0
            x[list(combo)] = 1
            d = self.decode(x)
            if d.feasible and (best is None or d.objective < best):
                best = d.objective
        return best


def _bits(k: int) -> NDArray[np.float64]:
    idx = np.arange(1 << k, dtype=np.int64)
    return np.asarray(((idx[:, None] >> np.arange(k)) & 1), dtype=np.float64)


def _most_work_remaining(op: Operation, c: Candidate) -> tuple[float, float]:
    return (-c.remaining_work, c.start)


def _name(i: int, *parts: object) -> str:
    return f"x{i}_" + re.sub(r"\W", "_", "_".join(str(p) for p in parts))


def _usable(inst: Instance, op: Operation) -> dict[str, float]:
    """Eligible machines that become available at all (``available_from`` finite)."""
    ok = {m: d for m, d in op.durations.items() if math.isfinite(inst.available(m))}
    if not ok:
        raise FormulationError(f"operation {op.key}: none of its machines ever becomes available")
    return ok


# --------------------------------------------------------------------------------------------
# assignment


def assignment_qubo(inst: Instance) -> QuboProblem:
    """The assignment formulation (see the module docstring)."""
    fixed: dict[str, str] = {}
    variables: list[tuple[str, str | int]] = []
    groups: list[list[int]] = []
    base = {m: inst.available(m) for m in inst.machines if math.isfinite(inst.available(m))}
    for op in inst.operations:
        usable = _usable(inst, op)
        if len(usable) == 1:
            only = next(iter(usable))
            fixed[op.key] = only
            base[only] += usable[only]
            continue
        groups.append([])
        for m in inst.machines:
            if m in usable:
                groups[-1].append(len(variables))
                variables.append((op.key, m))
    ops = {op.key: op for op in inst.operations}
    prog = QuadraticProgram(f"{inst.name}-assignment")
    names = [prog.binary_var(_name(i, k, m)).name for i, (k, m) in enumerate(variables)]
    dur = [ops[k].durations[str(m)] for k, m in variables]
    constant = sum(a * a for a in base.values())
    linear: dict[str | int, float] = {}
    quadratic: dict[tuple[str | int, str | int], float] = {}
    by_machine: dict[str, list[int]] = {}
    for i, (_, machine) in enumerate(variables):
        by_machine.setdefault(str(machine), []).append(i)
    for mach, idx in by_machine.items():
        for a, i in enumerate(idx):
            linear[names[i]] = linear.get(names[i], 0.0) + 2 * base[mach] * dur[i] + dur[i] ** 2
            for j in idx[a + 1 :]:
                quadratic[(names[i], names[j])] = (
                    quadratic.get((names[i], names[j]), 0.0) + 2 * dur[i] * dur[j]
                )
    prog.minimize(constant=constant, linear=linear, quadratic=quadratic)
    for g in groups:
        prog.linear_constraint(
            {names[i]: 1.0 for i in g}, "==", 1.0, name=_name(g[0], "one", variables[g[0]][0])
        )
    penalty = _assignment_penalty(inst, variables, groups, base, dur)
    qubo = QuadraticProgramToQubo(penalty=penalty).convert(prog) if groups else prog
    return QuboProblem("assignment", inst, prog, qubo, variables, groups, penalty, fixed=fixed)


def _assignment_penalty(
    inst: Instance,
    variables: Sequence[tuple[str, str | int]],
    groups: Sequence[Sequence[int]],
    base: dict[str, float],
    dur: Sequence[float],
) -> float:
    """Larger than what any one-hot violation can save. Dropping an operation saves at most what
    adding it back costs: ``2 L d + d^2`` on its cheapest machine, ``L`` that machine's largest
    possible load without it; an extra 1 only adds load. So ``P = 1 + max over operations``."""
    ceiling = dict(base)
    for i, (_, m) in enumerate(variables):
        ceiling[str(m)] += dur[i]
    worst = 0.0
    for g in groups:
        cost = min(2 * (ceiling[str(variables[i][1])] - dur[i]) * dur[i] + dur[i] ** 2 for i in g)
        worst = max(worst, cost)
    return 1.0 + worst


# --------------------------------------------------------------------------------------------
# time-indexed


def time_indexed_reason(inst: Instance) -> str | None:
    """Why the time-indexed formulation does not apply to ``inst`` (None: it does)."""
    if inst.is_flexible:
        return "the time-indexed formulation needs one machine per operation (the instance is flexible)"
    if inst.setups and any(j.family for j in inst.jobs):
        return "the time-indexed formulation has no sequence-dependent setups"
    for op in inst.operations:
        m, d = next(iter(op.durations.items()))
        if not float(d).is_integer():
            return f"the time-indexed formulation needs whole-second durations ({op.key} takes {d:g} s)"
        if not math.isfinite(inst.available(m)):
            return f"operation {op.key}: its machine {m} never becomes available"
    if inst.objective is Objective.WEIGHTED_TARDINESS and any(
        j.due_s is not None and not float(j.due_s).is_integer() for j in inst.jobs
    ):
        return "the time-indexed formulation needs whole-second due times"
    return None


def default_horizon(inst: Instance) -> int:
    """Makespan of an active schedule by most work remaining: a horizon that holds a feasible plan."""
    sched = build_schedule(inst, _most_work_remaining)
    return math.ceil(max(s.end for s in sched) - 1e-9)


def _windows(inst: Instance, horizon: int) -> dict[str, tuple[int, int]]:
    preds = predecessors(inst)
    order = topological_order(inst)
    ops = {op.key: op for op in inst.operations}
    job_of = {op.key: j for j in inst.jobs for op in j.operations}
    dur = {k: int(next(iter(op.durations.values()))) for k, op in ops.items()}
    est: dict[str, int] = {}
    for k in order:
        m = next(iter(ops[k].durations))
        est[k] = max(
            [math.ceil(job_of[k].release_s - 1e-9), math.ceil(inst.available(m) - 1e-9)]
            + [est[p] + dur[p] for p in preds[k]]
        )
    succ: dict[str, list[str]] = {k: [] for k in ops}
    for k, ps in preds.items():
        for p in ps:
            succ[p].append(k)
    tail: dict[str, int] = {}
    for k in reversed(order):
        tail[k] = dur[k] + max((tail[s] for s in succ[k]), default=0)
    out = {}
    for k in order:
        last = horizon - tail[k]
        if last < est[k]:
            raise FormulationError(
                f"horizon {horizon} s is shorter than the path through {k} ({est[k] + tail[k]} s)"
            )
        out[k] = (est[k], last)
    return out


def time_indexed_qubo(inst: Instance, horizon: int | None = None) -> QuboProblem:
    """The time-indexed formulation (see the module docstring); ``horizon`` defaults to
    ``default_horizon``."""
    reason = time_indexed_reason(inst)
    if reason:
        raise FormulationError(reason)
    horizon = default_horizon(inst) if horizon is None else int(horizon)
    win = _windows(inst, horizon)
    ops = {op.key: op for op in inst.operations}
    dur = {k: int(next(iter(op.durations.values()))) for k, op in ops.items()}
    machine = {k: next(iter(op.durations)) for k, op in ops.items()}
    preds = predecessors(inst)
    variables: list[tuple[str, str | int]] = []
    groups: list[list[int]] = []
    var_of: dict[tuple[str, int], int] = {}
    for op in inst.operations:
        lo, hi = win[op.key]
        groups.append([])
        for t in range(lo, hi + 1):
            var_of[(op.key, t)] = len(variables)
            groups[-1].append(len(variables))
            variables.append((op.key, t))
    prog = QuadraticProgram(f"{inst.name}-time-indexed")
    names = [prog.binary_var(_name(i, k, t)).name for i, (k, t) in enumerate(variables)]
    linear = _time_objective(inst, variables, dur, preds)
    penalty = 1.0 + sum(max(linear.get(i, 0.0) for i in g) for g in groups)
    conflicts: dict[tuple[int, int], float] = {}

    def clash(a: str, b: str, bad: Any) -> None:
        for ta in range(win[a][0], win[a][1] + 1):
            for tb in range(win[b][0], win[b][1] + 1):
                if bad(ta, tb):
                    i, j = sorted((var_of[(a, ta)], var_of[(b, tb)]))
                    conflicts[(i, j)] = penalty

    for b, ps in preds.items():
        for a in ps:
            clash(a, b, lambda ta, tb, a=a: tb < ta + dur[a])
    keys = list(ops)
    for x, a in enumerate(keys):
        for b in keys[x + 1 :]:
            if machine[a] == machine[b]:
                clash(a, b, lambda ta, tb, a=a, b=b: ta < tb + dur[b] and tb < ta + dur[a])
    prog.minimize(
        linear={names[i]: c for i, c in linear.items()},
        quadratic={(names[i], names[j]): c for (i, j), c in conflicts.items()},
    )
    for g in groups:
        prog.linear_constraint(
            {names[i]: 1.0 for i in g}, "==", 1.0, name=_name(g[0], "one", variables[g[0]][0])
        )
    qubo = QuadraticProgramToQubo(penalty=penalty).convert(prog)
    return QuboProblem("time-indexed", inst, prog, qubo, variables, groups, penalty, horizon=horizon)


def _time_objective(
    inst: Instance,
    variables: Sequence[tuple[str, str | int]],
    dur: dict[str, int],
    preds: dict[str, list[str]],
) -> dict[int, float]:
    """Linear coefficients of the objective over the start variables (non-negative)."""
    has_succ = {p for ps in preds.values() for p in ps}
    out: dict[int, float] = {}
    if inst.objective is Objective.WEIGHTED_TARDINESS:
        last = {job.operations[-1].key: job for job in inst.jobs}
        for i, (k, t) in enumerate(variables):
            job = last.get(k)
            if job is not None and job.due_s is not None:
                late = max(0.0, int(t) + dur[k] - job.due_s)
                if late > 0:
                    out[i] = job.weight * late
        return out
    sinks = [k for k in dur if k not in has_succ]
    c_min = min(int(t) + dur[k] for k, t in variables if k in sinks)
    base = len(sinks) + 1.0
    for i, (k, t) in enumerate(variables):
        if k in sinks:
            out[i] = base ** (int(t) + dur[k] - c_min)
    return out


# --------------------------------------------------------------------------------------------
# choosing


def qubit_count(inst: Instance, formulation: Formulation, horizon: int | None = None) -> int:
    """Qubits (QUBO variables) ``formulation`` needs for ``inst``, without building the QUBO.
    Raises ``FormulationError`` if the formulation does not apply."""
    if formulation == "assignment":
        return sum(len(_usable(inst, op)) for op in inst.operations if len(_usable(inst, op)) > 1)
    reason = time_indexed_reason(inst)
    if reason:
        raise FormulationError(reason)
    win = _windows(inst, default_horizon(inst) if horizon is None else horizon)
    return sum(hi - lo + 1 for lo, hi in win.values())


def choose_formulation(
    inst: Instance,
    max_qubits: int,
    formulation: Formulation | Literal["auto"] = "auto",
    horizon: int | None = None,
) -> tuple[Formulation, int, str]:
    """``(formulation, qubits, why)``. ``auto``: time-indexed if it applies and fits ``max_qubits``
    (it decides the order, so it is the real scheduling problem), else assignment. ``why`` says
    what was considered, for the solver's note. The caller compares ``qubits`` with its budget."""
    if formulation != "auto":
        return formulation, qubit_count(inst, formulation, horizon), ""
    why = time_indexed_reason(inst)
    if why is None:
        try:
            n = qubit_count(inst, "time-indexed", horizon)
        except FormulationError as exc:
            why = str(exc)
        else:
            if n <= max_qubits:
                return "time-indexed", n, ""
            why = f"time-indexed needs {n} qubits"
    return "assignment", qubit_count(inst, "assignment"), why


def build(inst: Instance, formulation: Formulation, horizon: int | None = None) -> QuboProblem:
    if formulation == "assignment":
        return assignment_qubo(inst)
    if formulation == "time-indexed":
        return time_indexed_qubo(inst, horizon)
    raise FormulationError(f"unknown formulation {formulation!r}; known: {', '.join(FORMULATIONS)}")


# --------------------------------------------------------------------------------------------
# Statistics of decoded samples (QAOA and annealing report the same metrics)


def formulate(
    inst: Instance,
    max_qubits: int,
    formulation: Formulation | Literal["auto"],
    horizon: int | None,
    limit: tuple[int, str, str],
) -> tuple[QuboProblem, str] | str:
    """The QUBO a sampling solver runs on ``inst`` with why that formulation was chosen, or why it
    cannot run (the solver's UNSUPPORTED note): the formulation does not apply, it needs more than
    ``limit`` = (most, what they are, what the most is called) variables, or nothing is to decide."""
    most, noun, word = limit
    try:
        kind, n, why = choose_formulation(inst, max_qubits, formulation, horizon)
        if n > most:
            return f"needs {n} {noun}, {word} {most} ({kind} formulation)"
        if n == 0:
            return f"nothing to decide: every operation has one machine ({why})"
        return build(inst, kind, horizon), why
    except FormulationError as exc:
        return str(exc)


@dataclass(frozen=True, slots=True)
class SampleStats:
    """The decoded distribution: the best plan and the metrics of the module docstring."""

    best: Decoded
    metrics: dict[str, float]


def sample_stats(
    problem: QuboProblem,
    samples: Iterable[tuple[Sequence[float] | NDArray[Any], float]],
    wall_s: float,
) -> SampleStats:
    """Decode every ``(bits, probability)`` and compute ``p_feasible``, ``p_optimal``, ``p_ground``,
    the approximation ratios and ``tts99_s``; the best plan is the lowest objective (unrepaired
    first on ties, then the most probable)."""
    decoded: list[tuple[Decoded, float, NDArray[np.uint8]]] = []
    for x, prob in samples:
        bits = np.asarray(np.round(np.asarray(x, dtype=float)), dtype=np.uint8)
        decoded.append((problem.decode(bits), float(prob), bits))
    if not decoded:
        raise ValueError("no samples to decode")
    total = sum(p for _, p, _ in decoded) or 1.0
    best = min(decoded, key=lambda t: (t[0].objective, not t[0].feasible, -t[1]))[0]
    metrics: dict[str, float] = {
        "p_feasible": sum(p for d, p, _ in decoded if d.feasible) / total,
        "repaired": 0.0 if best.feasible else 1.0,
        "best_objective": best.objective,
    }
    if problem.num_qubits <= ENUMERATION_MAX_QUBITS:
        energies = problem.energies() if problem.num_qubits else np.zeros(1)
        ground = float(energies.min())
        tol = 1e-9 * max(1.0, abs(ground))
        weights = 1 << np.arange(problem.num_qubits, dtype=np.int64)
        metrics["p_ground"] = (
            sum(p for _, p, b in decoded if energies[int(b.astype(np.int64) @ weights)] <= ground + tol)
            / total
        )
        metrics["qubo_ground_energy"] = ground
        optimum = problem.optimum()
        if optimum is not None:
            p_opt = sum(p for d, p, _ in decoded if d.feasible and d.objective <= optimum + 1e-9) / total
            expected = sum(d.objective * p for d, p, _ in decoded) / total
            metrics.update(
                optimum=optimum,
                p_optimal=p_opt,
                approx_ratio_best=_ratio(optimum, best.objective),
                approx_ratio_expected=_ratio(optimum, expected),
                tts99_s=tts99(wall_s, p_opt),
            )
    return SampleStats(best, metrics)


def _ratio(optimum: float, value: float) -> float:
    if value <= 1e-12:
        return 1.0 if optimum <= 1e-12 else 0.0
    return optimum / value


def tts99(run_s: float, p: float) -> float:
    """Time to reach the optimum with 99% probability, repeating a run that succeeds with ``p``."""
    if p <= 0:
        return math.inf
    if p >= 0.99:
        return run_s
    return run_s * math.log(0.01) / math.log(1 - p)
