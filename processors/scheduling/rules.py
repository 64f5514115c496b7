"""Dispatch rules planners know, as schedule builders: FIFO, SPT, EDD, MWKR.

Each builds a Giffler-Thompson active schedule (``evaluate.build_schedule``) choosing, among the
operations competing for the machine that frees first, by:

- ``fifo``: the one that became ready first (then job order);
- ``spt``: shortest processing time on that machine;
- ``edd``: earliest due date of its job (jobs without one last);
- ``mwkr``: most work remaining in its job (this operation included).

Rule results depend on how ties and the schedule generation scheme are coded (FACTS.md): these are
active schedules with deterministic ties, so ft06 gives one fixed makespan per rule.

>>> from processors.scheduling.formats import builtin_instance
>>> from processors.scheduling.model import Budget
>>> [make_rule("spt").solve(builtin_instance("ft06"), Budget()).objective for _ in range(2)]
[94.0, 94.0]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from processors.scheduling.base import finish, register
from processors.scheduling.evaluate import Candidate
from processors.scheduling.model import Budget, Instance, Operation, SolveResult

__all__ = ["RULES", "RuleSolver", "make_rule"]

RULES: dict[str, Callable[[Operation, Candidate], float]] = {
    "fifo": lambda op, c: c.arrival,
    "spt": lambda op, c: c.end - c.start,
    "edd": lambda op, c: c.due_s if c.due_s is not None else math.inf,
    "mwkr": lambda op, c: -c.remaining_work,
}


class RuleSolver:
    def __init__(self, rule: str) -> None:
        self.name = rule
        self._priority = RULES[rule]

    def solve(self, instance: Instance, budget: Budget) -> SolveResult:
        from processors.scheduling.evaluate import build_schedule

        started = time.perf_counter()
        return finish(self.name, instance, build_schedule(instance, self._priority), started)


def make_rule(rule: str) -> RuleSolver:
    return RuleSolver(rule)


for _rule in RULES:
    register(_rule, lambda r=_rule: RuleSolver(r))
