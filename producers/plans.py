"""The simulated line follows the scheduler: ``schedule.plans`` for its lines become its dispatch policy.

``PlanFollower`` reads the plans topic from its end when the run starts (a plan made for an earlier
run is not this line's business) and, each time the publishing loop asks, adopts every new plan of
one of the simulator's lines: the machines then take parts in the plan's order per machine
(``sim.dispatch.PlanPolicy``; parts the plan does not know are dispatched by the line's rule), and
the state and production events that follow carry the plan's correlation id, so one cause (a
breakdown, its alarm, the request, the plan) can be followed into what the line did next.

A plan adopted while its line has moved on is still followed as far as it applies: a part already
finished is simply not in any queue any more.

A plan's maintenance windows (jobs ``maintenance:<machine>:<component>``, asked for when a machine's
remaining useful life runs short) are carried out: at the window's planned start the machine is
taken DOWN for maintenance for the window's length (``sim.actions.StartMaintenance``), which repairs
its wear. A newer plan replaces the windows still to come (the requests carry every window asked for
and not yet begun); a machine already DOWN at its window's start is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas import Codecs
from twin.clients import kafka_consumer, schema_registry
from twin.errors import DecodeError
from twin.settings import Settings
from twin.topics import MAINTENANCE_JOB, SCHEDULE_PLANS

if TYPE_CHECKING:
    from confluent_kafka import Consumer

    from sim import Simulator

log = logging.getLogger(__name__)

__all__ = ["AdoptedPlan", "PlanFollower", "maintenance_windows", "sequences_of"]


@dataclass(frozen=True, slots=True)
class AdoptedPlan:
    line_id: str
    plan_id: str
    correlation_id: str
    solver: str
    record: dict[str, Any]


def maintenance_windows(plan: Mapping[str, Any]) -> list[tuple[str, int, float]]:
    """(machine_id, start ms, seconds) of the plan's maintenance windows."""
    return [
        (str(a["machine_id"]), int(a["start_time"]), (int(a["end_time"]) - int(a["start_time"])) / 1000)
        for a in plan.get("assignments") or []
        if str(a["job_id"]).startswith(MAINTENANCE_JOB)
    ]


def sequences_of(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """Machine -> job ids in planned start order (a job visiting a machine twice appears twice);
    maintenance windows are not parts and are left out (``maintenance_windows``)."""
    by_machine: dict[str, list[tuple[int, str]]] = {}
    for a in plan.get("assignments") or []:
        if str(a["job_id"]).startswith(MAINTENANCE_JOB):
            continue
        by_machine.setdefault(str(a["machine_id"]), []).append((int(a["start_time"]), str(a["job_id"])))
    return {m: [job for _, job in sorted(items)] for m, items in by_machine.items()}


class PlanFollower:
    """Adopts new plans for the simulator's lines (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        simulator: Simulator,
        *,
        prefix: str = "",
        on_adopt: Callable[[AdoptedPlan], None] | None = None,
    ) -> None:
        from confluent_kafka import OFFSET_END, TopicPartition

        self.simulator = simulator
        self.windows: dict[str, tuple[int, float]] = {}
        """machine_id -> (planned start ms, seconds) of a maintenance window still to come."""
        self.maintained: list[tuple[str, int]] = []
        """(machine_id, sim time ms) of every window carried out."""
        self.lines = {line.id for line in simulator.factory.lines}
        self.topic = prefix + SCHEDULE_PLANS
        self.on_adopt = on_adopt
        self.correlation: dict[str, str] = {}
        """line_id -> correlation id of the plan the line follows now."""
        self.adopted: list[AdoptedPlan] = []
        self._registry = schema_registry(settings)
        self._codecs = Codecs(self._registry, prefix=prefix, register=False, logical_types=False)
        self._consumer: Consumer = kafka_consumer(
            settings, "twin-produce-plans", **{"enable.auto.commit": False}
        )
        meta = self._consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        partitions = [] if meta is None or meta.error is not None else list(meta.partitions)
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_END) for p in partitions])

    def poll(self) -> int:
        """Adopt the plans that arrived since the last call and start the maintenance windows that
        are due; returns how many plans were adopted."""
        self.start_due_windows()
        adopted = 0
        for msg in self._consumer.consume(100, timeout=0):
            if msg.error() is not None:
                continue
            try:
                record = self._codecs(self.topic).decode(msg.value())  # plain wire form
            except DecodeError as exc:
                log.warning("unreadable plan skipped: %s", exc)
                continue
            if str(record["line_id"]) in self.lines:
                self.adopt(record)
                adopted += 1
        return adopted

    def adopt(self, record: dict[str, Any]) -> AdoptedPlan:
        from sim.dispatch import PlanPolicy

        line_id = str(record["line_id"])
        plan = AdoptedPlan(
            line_id, str(record["plan_id"]), str(record["correlation_id"]), str(record["solver"]), record
        )
        policy = PlanPolicy(sequences_of(record), plan_id=plan.plan_id, correlation_id=plan.correlation_id)
        self.simulator.set_policy(line_id, policy)
        self.correlation[line_id] = plan.correlation_id
        # The newest plan is the plan: its windows replace those still to come (a request carries
        # every window asked for and not begun, so a re-plan for another cause keeps them).
        self.windows = {m: (start, seconds) for m, start, seconds in maintenance_windows(record)}
        self.start_due_windows()
        self.adopted.append(plan)
        if self.on_adopt is not None:
            self.on_adopt(plan)
        return plan

    def start_due_windows(self) -> None:
        """Take each machine whose maintenance window has begun DOWN for maintenance."""
        from sim.actions import StartMaintenance

        now = self.simulator.now_ms
        for machine_id, (start_ms, seconds) in list(self.windows.items()):
            if start_ms > now:
                continue
            del self.windows[machine_id]
            states = {m.machine_id: m.state for line in self.simulator.observe().lines for m in line.machines}
            if states.get(machine_id) == "DOWN":
                log.info("maintenance window of %s skipped: the machine is already down", machine_id)
                continue
            self.simulator.act(StartMaintenance(machine_id, seconds))
            self.maintained.append((machine_id, now))
            log.info("maintenance of %s started as planned (%.0f s)", machine_id, seconds)

    def close(self) -> None:
        self._consumer.close()
        self._registry.close()
