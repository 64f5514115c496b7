"""Simulated annealing on the same QUBO as QAOA (registered as ``sa``): the classical baseline.

The instance goes through the same ``qubo.choose_formulation`` and ``qubo.build`` as in
``quantum.py`` (so, given the same ``max_qubits``, the same formulation and the same penalty
weights), dwave-samplers' ``SimulatedAnnealingSampler`` draws ``reads`` independent anneals of
``sweeps`` Metropolis sweeps each (its default geometric temperature schedule, seeded by
``budget.seed``), and every read is decoded, checked and repaired exactly as a QAOA sample is
(``qubo.sample_stats``).

Budget, matched to QAOA's honestly but not pretending to be equal in work: by default one read per
QAOA objective evaluation (``reads = budget.evaluations``, default 100). A QAOA evaluation draws
``shots`` bitstrings from one circuit; a read is one bitstring at the end of one anneal of
``sweeps * n`` single-flip proposals. So SA sees ~``shots`` times fewer samples than QAOA, and
spends ``sweeps * n`` classical flips on each. ``reads`` can be set explicitly (e.g. to QAOA's
``circuit_samples``, to compare per sample). The metrics carry ``reads``, ``sweeps`` and
``evaluations`` (= reads) next to the same ``p_feasible``, ``p_optimal``, ``p_ground``,
approximation ratios, ``tts99_s`` and ``repaired`` as QAOA, with the same definitions (each read
weighs 1/reads).

Instances above ``max_variables`` QUBO variables answer UNSUPPORTED; the qubit budget ``max_qubits``
only steers the formulation choice, as it does for QAOA.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np

from processors.scheduling.base import finish, register
from processors.scheduling.model import Budget, Instance, SolveResult, Status
from processors.scheduling.qubo import (
    DEFAULT_EVALUATIONS,
    Formulation,
    QuboProblem,
    formulate,
    sample_stats,
)

__all__ = ["SaSolver", "bqm_of"]


def bqm_of(problem: QuboProblem):  # type: ignore[no-untyped-def]  # dimod's BQM is generic over untyped arrays
    """The QUBO as a dimod ``BinaryQuadraticModel`` over variables 0..n-1 (same energies)."""
    import dimod

    h, j, c = problem.arrays()
    rows, cols = np.nonzero(j)
    quadratic = {(int(a), int(b)): float(j[a, b]) for a, b in zip(rows, cols, strict=True)}
    linear = {i: float(v) for i, v in enumerate(h)}
    return dimod.BinaryQuadraticModel(linear, quadratic, c, dimod.BINARY)


class SaSolver:
    """Simulated annealing on the QAOA QUBO (see the module docstring)."""

    name = "sa"

    def __init__(
        self,
        reads: int | None = None,
        sweeps: int = 1000,
        max_qubits: int = 20,
        formulation: Formulation | Literal["auto"] = "auto",
        max_variables: int = 5000,
        horizon: int | None = None,
    ) -> None:
        self.reads = reads
        self.sweeps = sweeps
        self.max_qubits = max_qubits
        self.formulation = formulation
        self.max_variables = max_variables
        self.horizon = horizon

    def solve(self, instance: Instance, budget: Budget) -> SolveResult:
        from dwave.samplers import SimulatedAnnealingSampler

        started = time.perf_counter()
        formulated = formulate(
            instance,
            self.max_qubits,
            self.formulation,
            self.horizon,
            (self.max_variables, "variables", "limit"),
        )
        if isinstance(formulated, str):
            return self._unsupported(formulated, started)
        problem, why = formulated
        kind = problem.formulation
        reads = self.reads or budget.evaluations or DEFAULT_EVALUATIONS
        sampleset = SimulatedAnnealingSampler().sample(  # type: ignore[no-untyped-call]
            bqm_of(problem), num_reads=reads, num_sweeps=self.sweeps, seed=budget.seed % (1 << 32)
        )
        order = [sampleset.variables.index(i) for i in range(problem.num_qubits)]
        record = sampleset.record
        samples = [
            (row[order], float(count) / reads)
            for row, count in zip(record.sample, record.num_occurrences, strict=True)
        ]
        wall = time.perf_counter() - started
        stats = sample_stats(problem, samples, wall)
        metrics = {
            "qubits": float(problem.num_qubits),
            "reads": float(reads),
            "sweeps": float(self.sweeps),
            "evaluations": float(reads),
            "penalty": problem.penalty,
            **stats.metrics,
        }
        if problem.horizon is not None:
            metrics["horizon"] = float(problem.horizon)
        note = f"{kind} formulation, {problem.num_qubits} variables"
        if stats.best.repaired:
            note += "; plan repaired from an infeasible read"
        if why:
            note += f"; {why}"
        return finish(
            self.name,
            instance,
            stats.best.schedule,
            started,
            metrics=metrics,
            backend="dwave-samplers",
            note=note,
        )

    def _unsupported(self, why: str, started: float) -> SolveResult:
        return SolveResult(self.name, Status.UNSUPPORTED, wall_s=time.perf_counter() - started, note=why)


register("sa", SaSolver)
