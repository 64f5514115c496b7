"""The dispatch decision surface: what a free machine does next is a policy's choice.

At every decision point the line asks the policy of that line which waiting part a free machine
takes. Decision points are: a machine becomes free (it finished and handed on a part, or came back
from a setup, a repair, a break or a pause) with work in its queue; a part arrives in the queue of
an idle machine; another machine of the line goes DOWN; the line's policy is replaced. A stage fed
by the unlimited raw-material source has no queue and decides nothing (it takes a fresh part).

The policy sees a ``Decision``: plain frozen data, a snapshot of the queue as this machine sees it
(nominal processing and setup times on *this* machine), and answers with an index into
``decision.queue`` or ``None``: stay idle for now (the machine shows STARVED with reason
``dispatch_wait``) and be asked again at its next decision point. Dispatch rules, an adopted plan
and a learning agent are all ``Policy`` objects, so they compare on the same line and seeds.

>>> item = lambda pid, p, due: QueueItem(pid, "A", 0, p, 0.0, due, 0, 0, p, 1, None)
>>> d = Decision(0, "L", "m1", DecisionCause.MACHINE_FREE, (item("p1", 30.0, 900), item("p2", 10.0, 800)))
>>> [policy_by_name(n).choose(d) for n in RULE_NAMES]
[0, 1, 1, 0]
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol, runtime_checkable

from twin.errors import SimulationError

__all__ = [
    "RULES",
    "RULE_NAMES",
    "Decision",
    "DecisionCause",
    "EddPolicy",
    "FifoPolicy",
    "MwkrPolicy",
    "PlanPolicy",
    "Policy",
    "QueueItem",
    "SptPolicy",
    "checked_choice",
    "policy_by_name",
]


class DecisionCause(StrEnum):
    """Why the machine is asked now."""

    START = "start"
    """The simulation starts."""
    MACHINE_FREE = "machine_free"
    """The machine finished and handed on a part, or is back from setup, repair, a break, a pause."""
    PART_ARRIVED = "part_arrived"
    """A part arrived in the queue while the machine was idle."""
    MACHINE_FAILED = "machine_failed"
    """Another machine of the line went DOWN (breakdown, jam, maintenance): plans may change."""
    POLICY_CHANGED = "policy_changed"
    """``Simulator.set_policy`` replaced the line's policy."""


@dataclass(frozen=True, slots=True)
class QueueItem:
    """A part waiting in the queue of the deciding machine. Times are nominal (no random spread)."""

    part_id: str
    family: str | None
    """Product family; ``None`` on lines without families."""
    op_index: int
    """The operation this queue feeds: 0-based index of the stage in the part's route."""
    processing_s: float
    """Nominal processing time of this part on the deciding machine."""
    setup_s: float
    """Setup time the deciding machine would need first (from its current family to this one)."""
    due_ms: int | None
    """Due date (epoch ms); ``None`` when the line sets none."""
    arrived_ms: int
    """When the part entered this queue."""
    released_ms: int
    """When the part (order) was released to the line."""
    remaining_work_s: float
    """This operation on this machine plus the later ones at their stage's mean nominal time."""
    ops_left: int
    """Operations still to do, this one included."""
    correlation_id: str | None
    """The order's correlation id, where it came with one (simulated orders have none)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One question to a policy: which of ``queue`` should ``machine_id`` take now?"""

    now_ms: int
    line_id: str
    machine_id: str
    cause: DecisionCause
    queue: tuple[QueueItem, ...]
    """Never empty: a machine with nothing waiting is not asked. In arrival order."""
    stage: str = ""
    """The stage (group of parallel machines sharing this queue) the machine belongs to."""
    machine_family: str | None = None
    """The family the machine is set up for (``None``: none yet, the first part needs no setup)."""
    peers: tuple[str, ...] = ()
    """Every machine of the stage, this one included, in layout order."""


@runtime_checkable
class Policy(Protocol):
    """Chooses for a free machine: an index into ``decision.queue``, or ``None`` to stay idle.

    ``name`` identifies the policy in observations (``LineObservation.policy``). A policy must be
    deterministic for a run to be reproducible by seed; it may keep state (an agent's memory). It
    only answers: it must not change the simulator from inside ``choose``.
    """

    @property
    def name(self) -> str: ...

    def choose(self, decision: Decision) -> int | None: ...


def _best(queue: tuple[QueueItem, ...], key: Callable[[QueueItem], float]) -> int:
    """Index of the smallest ``key``; ties go to the earliest arrival, then the queue position."""
    best = 0
    best_key = (key(queue[0]), queue[0].arrived_ms)
    for i in range(1, len(queue)):
        item = queue[i]
        k = (key(item), item.arrived_ms)
        if k < best_key:
            best, best_key = i, k
    return best


@dataclass(frozen=True, slots=True)
class FifoPolicy:
    """First in, first out: the part that arrived in the queue first (ties: queue position)."""

    name: str = "fifo"

    def choose(self, decision: Decision) -> int | None:
        queue = decision.queue
        best = 0
        for i in range(1, len(queue)):
            if queue[i].arrived_ms < queue[best].arrived_ms:
                best = i
        return best


@dataclass(frozen=True, slots=True)
class SptPolicy:
    """Shortest processing time on this machine, setup included: with sequence-dependent setups the
    machine is busy for both, so SPT prefers staying on its family (ties: FIFO)."""

    name: str = "spt"

    def choose(self, decision: Decision) -> int | None:
        return _best(decision.queue, lambda q: q.processing_s + q.setup_s)


@dataclass(frozen=True, slots=True)
class EddPolicy:
    """Earliest due date; parts without one come last (ties: FIFO)."""

    name: str = "edd"

    def choose(self, decision: Decision) -> int | None:
        return _best(decision.queue, lambda q: math.inf if q.due_ms is None else q.due_ms)


@dataclass(frozen=True, slots=True)
class MwkrPolicy:
    """Most work remaining (this operation and the later ones; ties: FIFO)."""

    name: str = "mwkr"

    def choose(self, decision: Decision) -> int | None:
        return _best(decision.queue, lambda q: -q.remaining_work_s)


RULES: dict[str, Callable[[], Policy]] = {
    "fifo": FifoPolicy,
    "spt": SptPolicy,
    "edd": EddPolicy,
    "mwkr": MwkrPolicy,
}
RULE_NAMES = tuple(RULES)


def policy_by_name(name: str) -> Policy:
    """A fresh rule policy: ``fifo``, ``spt``, ``edd`` or ``mwkr``.

    >>> policy_by_name("edd").name
    'edd'
    """
    try:
        return RULES[name]()
    except KeyError:
        msg = f"unknown dispatch rule {name!r} (known: {', '.join(RULE_NAMES)})"
        raise SimulationError(msg) from None


class PlanPolicy:
    """Follow a plan: per machine, the part ids in the order it should process them.

    How a machine chooses, in order:

    1. A part planned on this machine is in the queue: take the one earliest in its sequence. The
       machine does not wait for a planned part that has not arrived yet; it goes on with the next
       planned part present (so a scrapped or late part never stalls it).
    2. Else, parts planned on no machine of this stage (released after the plan was made) are
       chosen by ``fallback`` (default EDD), among themselves.
    3. Else (only parts planned on another machine of this stage wait): stay idle; they are that
       machine's work. A re-plan (a new ``PlanPolicy``) moves them.

    ``plan_id`` and ``correlation_id`` name the plan and the cause it answers; observations report
    them for the line.

    >>> plan = PlanPolicy({"m1": ["p2", "p1"], "m2": ["p3"]}, plan_id="plan-7")
    >>> item = lambda pid: QueueItem(pid, None, 0, 10.0, 0.0, None, 0, 0, 10.0, 1, None)
    >>> d = Decision(0, "L", "m1", DecisionCause.MACHINE_FREE, tuple(map(item, ["p1", "p3", "p2"])),
    ...              peers=("m1", "m2"))
    >>> plan.choose(d)  # p2 is first in m1's sequence
    2
    >>> plan.choose(replace(d, queue=d.queue[:2]))  # p2 is not there yet: go on with p1
    0
    >>> plan.choose(replace(d, queue=d.queue[1:2])) is None  # p3 is m2's: leave it
    True
    """

    __slots__ = ("_owner", "_rank", "correlation_id", "fallback", "plan_id", "sequences")

    name = "plan"

    def __init__(
        self,
        sequences: Mapping[str, Sequence[str]],
        *,
        fallback: Policy | None = None,
        plan_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.sequences = {machine: tuple(parts) for machine, parts in sequences.items()}
        self.fallback: Policy = fallback if fallback is not None else EddPolicy()
        self.plan_id = plan_id
        self.correlation_id = correlation_id
        self._rank: dict[str, dict[str, int]] = {}
        self._owner: dict[str, set[str]] = {}
        for machine, parts in self.sequences.items():
            rank = self._rank[machine] = {}
            for i, part in enumerate(parts):
                rank.setdefault(part, i)
                self._owner.setdefault(part, set()).add(machine)

    def choose(self, decision: Decision) -> int | None:
        queue = decision.queue
        rank = self._rank.get(decision.machine_id, {})
        best: int | None = None
        best_rank = 0
        for i, item in enumerate(queue):
            r = rank.get(item.part_id)
            if r is not None and (best is None or r < best_rank):
                best, best_rank = i, r
        if best is not None:
            return best
        others = set(decision.peers) - {decision.machine_id}
        free = [i for i, item in enumerate(queue) if not (self._owner.get(item.part_id, set()) & others)]
        if not free:
            return None
        if len(free) == len(queue):
            return self.fallback.choose(decision)
        pick = self.fallback.choose(replace(decision, queue=tuple(queue[i] for i in free)))
        return None if pick is None else free[checked_choice(pick, len(free), self.fallback, decision)]

    def __repr__(self) -> str:
        planned = sum(len(s) for s in self.sequences.values())
        return (
            f"PlanPolicy(plan_id={self.plan_id!r}, correlation_id={self.correlation_id!r}, "
            f"machines={len(self.sequences)}, operations={planned}, fallback={self.fallback.name!r})"
        )


def checked_choice(choice: object, size: int, policy: Policy, decision: Decision) -> int:
    """``choice`` as a valid queue index, or a ``SimulationError`` naming the policy and machine.

    Integer-like answers (``numpy.int64`` from an agent) are accepted.
    """
    try:
        index = operator.index(choice)  # type: ignore[arg-type]
    except TypeError:
        index = -1
    if not 0 <= index < size or isinstance(choice, bool):
        msg = (
            f"policy {getattr(policy, 'name', policy)!r} chose {choice!r} for {decision.machine_id} "
            f"at {decision.now_ms}; expected None or an index into its queue of {size}"
        )
        raise SimulationError(msg)
    return index
