"""The one interface every solver implements, and the registry the CLI and the consumer use.

A solver is an object with a ``name`` and ``solve(instance, budget) -> SolveResult``. It never
raises for an instance it cannot handle: it answers ``UNSUPPORTED`` (with the reason in ``note``),
``INFEASIBLE`` or ``TIMEOUT``. Every schedule it returns has passed ``evaluate.check``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from processors.scheduling.evaluate import check, objective
from processors.scheduling.model import Budget, Instance, ScheduledOp, SolveResult, Status

__all__ = ["Solver", "finish", "make_solver", "register", "solver_names"]


class Solver(Protocol):
    name: str

    def solve(self, instance: Instance, budget: Budget) -> SolveResult: ...


_FACTORIES: dict[str, Callable[..., Solver]] = {}


def register(name: str, factory: Callable[..., Solver]) -> None:
    _FACTORIES[name] = factory


def solver_names() -> list[str]:
    _load_builtin()
    return list(_FACTORIES)


def make_solver(name: str, **options: object) -> Solver:
    """The solver called ``name`` (see ``solver_names``) built with ``options``; KeyError names the
    known ones."""
    _load_builtin()
    factory = _FACTORIES.get(name)
    if factory is None:
        known = ", ".join(_FACTORIES)
        raise KeyError(f"unknown solver {name!r}; known: {known}")
    return factory(**options)


def _load_builtin() -> None:
    # Importing the modules registers their solvers; heavy libraries load inside ``solve``.
    import processors.scheduling.cpsat
    import processors.scheduling.rules

    try:
        import processors.scheduling.anneal
        import processors.scheduling.quantum  # noqa: F401
    except ImportError:  # pragma: no cover - the quantum stack is part of the install
        pass


def finish(
    solver: str,
    instance: Instance,
    schedule: list[ScheduledOp],
    started: float,
    status: Status = Status.FEASIBLE,
    **extra: object,
) -> SolveResult:
    """Check ``schedule`` and wrap it in a result; an infeasible one becomes an ERROR (a solver bug)."""
    wall = time.perf_counter() - started
    problems = check(instance, schedule)
    if problems:
        return SolveResult(
            solver, Status.ERROR, wall_s=wall, note=f"produced an infeasible schedule: {problems[0]}"
        )
    return SolveResult(solver, status, schedule, objective(instance, schedule), wall_s=wall, **extra)  # type: ignore[arg-type]
