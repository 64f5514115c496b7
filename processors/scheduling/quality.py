"""The solver-quality benchmark behind ``twin schedule bench`` (and bench/schedule_quality.py):
every solver on the same instances, each one's gap to the best known optimum and its time, and for
QAOA and annealing at the same sample budget P(feasible), P(optimal) and TTS99.

A methodology table, not a claim: QAOA only takes the instances whose QUBO fits its qubit budget,
and the row says so when it does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from processors.scheduling.base import make_solver
from processors.scheduling.formats import builtin_instance, builtin_optimum
from processors.scheduling.model import Budget, SolveResult, Status

DEFAULT_INSTANCES = ("pm3x3", "pm4x3", "js3x2", "shop8", "ft06", "la01", "la02", "la03", "la04", "la05")
DEFAULT_SOLVERS = ("cpsat", "edd", "mwkr", "spt", "fifo", "sa", "qaoa")


@dataclass
class Row:
    instance: str
    size: str
    best_known: float | None
    result: SolveResult

    @property
    def gap(self) -> float | None:
        return self.result.gap_to(self.best_known)


def run_quality(
    instances: Sequence[str] = DEFAULT_INSTANCES,
    solvers: Sequence[str] = DEFAULT_SOLVERS,
    *,
    time_limit_s: float = 10.0,
    seed: int = 0,
    evaluations: int | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    rows: list[Row] = []
    for name in instances:
        inst = builtin_instance(name)
        results = []
        for solver in solvers:
            if progress is not None:
                progress(f"{name}: {solver}")
            budget = Budget(time_limit_s=time_limit_s, seed=seed, evaluations=evaluations)
            results.append(make_solver(solver, **(options or {}).get(solver, {})).solve(inst, budget))
        best = builtin_optimum(name)
        if best is None:  # our own instances: the proven CP-SAT optimum, if it proved one
            proven = [r.objective for r in results if r.status is Status.OPTIMAL and r.solver == "cpsat"]
            best = proven[0] if proven else None
        rows += [Row(name, inst.size, best, r) for r in results]
    return rows


def markdown(rows: Sequence[Row]) -> str:
    """The table as docs/benchmarks.md shows it."""
    lines = [
        "| instance | size | best known | solver | status | objective | gap | time s | "
        "qubits | P(feasible) | P(optimal) | TTS99 s | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row.result
        m = r.metrics

        def f(key: str, spec: str = ".3f", m: dict[str, float] = m) -> str:
            v = m.get(key)
            if v is None:
                return ""
            return "inf" if math.isinf(v) else format(v, spec)

        gap = "" if row.gap is None else f"{row.gap:.1%}"
        lines.append(
            f"| {row.instance} | {row.size} | {'' if row.best_known is None else f'{row.best_known:g}'} | "
            f"{r.solver} | {r.status.value} | {'' if r.objective is None else f'{r.objective:g}'} | {gap} | "
            f"{r.wall_s:.3f} | {f('qubits', '.0f')} | {f('p_feasible')} | {f('p_optimal')} | "
            f"{f('tts99_s', '.3g')} | "
            f"{r.note.replace('|', '/')} |"
        )
    return "\n".join(lines)
