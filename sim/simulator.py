"""The simulator: a discrete-event model of the factory, deterministic by seed, far faster than real
time. The same surface serves a Kafka publisher (``run``), an RL environment (``step``, ``observe``,
``act``) and anomaly-detection scoring (``faults``).

>>> from sim import Simulator, load_factory
>>> sim = Simulator(load_factory(), seed=7)
>>> events = sim.step(60.0)
>>> sim.observe().machine("cnc-1").state
'RUNNING'
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from sim.actions import Action, Pause, Resume, StartMaintenance
from sim.agenda import Agenda
from sim.dispatch import Policy
from sim.events import SimEvent, TelemetryEvent
from sim.faults import FaultRecord, faults_to_rows
from sim.injector import Injector
from sim.layout import FactorySpec, FaultSpec
from sim.line import Line
from sim.machine import Machine
from sim.observation import BufferObservation, FactoryObservation, LineObservation, MachineObservation
from twin.errors import SimulationError

DEFAULT_START_TIME_MS = 1_736_143_200_000
"""2025-01-06T06:00:00Z, a Monday shift start: a fixed default keeps runs reproducible. A publisher
that wants live timestamps passes the wall clock."""


class Simulator:
    """A running factory. Time is epoch milliseconds; ``run`` and ``step`` advance it.

    Events with equal times come out in the order they happened; at the start every machine reports
    a ``StateChangeEvent`` with ``previous=None``. Consume a ``run`` iterator before starting another.

    ``policies`` maps line ids to the dispatch ``Policy`` their machines decide by from the start
    (others use their layout's ``dispatch`` rule, FIFO by default); ``set_policy`` changes one later.
    """

    def __init__(
        self,
        factory: FactorySpec,
        seed: int,
        start_time_ms: int | None = None,
        policies: Mapping[str, Policy] | None = None,
    ) -> None:
        self._factory = factory
        self._seed = seed
        self._start_ms = DEFAULT_START_TIME_MS if start_time_ms is None else start_time_ms
        self._agenda = Agenda(self._start_ms)
        self._outbox: list[SimEvent] = []
        emit = self._outbox.append
        policies = dict(policies or {})
        for line_id, policy in policies.items():
            self._check_policy(line_id, policy)
        self._lines = [
            Line(spec, i, seed, self._agenda, emit, policies.get(spec.id))
            for i, spec in enumerate(factory.lines)
        ]
        for line in self._lines:
            line.start()
        self._injector = Injector(factory, self._lines, seed, self._agenda, self._start_ms)
        groups: dict[int, list[Machine]] = {}
        for line in self._lines:
            for m in line.machines:
                interval_ms = max(1, round(m.spec.telemetry_interval_s * 1000))
                groups.setdefault(interval_ms, []).append(m)
        for interval_ms, machines in sorted(groups.items()):
            self._agenda.push(
                self._start_ms + interval_ms, self._on_telemetry, (machines, interval_ms), late=True
            )

    # -- clock ----------------------------------------------------------------------------------

    @property
    def factory(self) -> FactorySpec:
        return self._factory

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def start_time_ms(self) -> int:
        return self._start_ms

    @property
    def now_ms(self) -> int:
        return self._agenda.now

    def run(self, until_ms: int) -> Iterator[SimEvent]:
        """Advance to ``until_ms`` (epoch ms, inclusive), yielding events in non-decreasing time."""
        if until_ms < self._start_ms:
            msg = (
                f"until_ms={until_ms} is before the simulation start {self._start_ms}; "
                "it is an absolute time in epoch milliseconds"
            )
            raise SimulationError(msg)
        return self._run(until_ms)

    def step(self, dt_s: float) -> list[SimEvent]:
        """Advance by ``dt_s`` seconds and return what happened."""
        if not math.isfinite(dt_s) or dt_s < 0:
            msg = f"dt_s must be a finite number of seconds >= 0, got {dt_s}"
            raise SimulationError(msg)
        return list(self._run(self._agenda.now + round(dt_s * 1000)))

    def _run(self, until_ms: int) -> Iterator[SimEvent]:
        agenda = self._agenda
        out = self._outbox
        while True:
            if out:
                batch = out.copy()
                out.clear()
                for i, event in enumerate(batch):
                    try:
                        yield event
                    except GeneratorExit:
                        # An abandoned run keeps what it did not deliver for the next one.
                        out[:0] = batch[i + 1 :]
                        raise
            next_time = agenda.next_time()
            if next_time is None or next_time > until_ms:
                break
            handler, arg = agenda.pop()
            handler(arg)
        agenda.now = max(agenda.now, until_ms)

    def _on_telemetry(self, arg: tuple[list[Machine], int]) -> None:
        machines, interval_ms = arg
        now = self._agenda.now
        emit = self._outbox.append
        for m in machines:
            if m.targets_dirty or m.ramping:
                m.refresh_targets(now)
            emit(TelemetryEvent(now, m.line_id, m.machine_id, m.machine_type, m.bank.sample()))
        self._agenda.push(now + interval_ms, self._on_telemetry, arg, late=True)

    # -- control --------------------------------------------------------------------------------

    def act(self, action: Action) -> None:
        """Apply ``action`` now; the state changes it causes come out of the next ``run``/``step``."""
        given: object = action  # agents are often untyped code; check at runtime too
        if not isinstance(given, Pause | Resume | StartMaintenance):
            msg = f"unknown action {action!r}; expected Pause, Resume or StartMaintenance"
            raise SimulationError(msg)
        line, m = self._injector.locate(action.machine_id)
        if isinstance(action, Pause):
            if "paused" not in m.holds:
                line.add_hold(m, "paused")
        elif isinstance(action, Resume):
            if "paused" in m.holds:
                line.remove_hold(m, "paused", "resumed")
        else:
            if not math.isfinite(action.duration_s) or action.duration_s <= 0:
                msg = f"maintenance duration_s must be a positive number, got {action.duration_s}"
                raise SimulationError(msg)
            line.add_down(m, "maintenance")
            self._injector.repair(m)
            line.renew_ttf(m)
            end = self._agenda.now + max(1, round(action.duration_s * 1000))
            self._agenda.push(end, self._on_maintenance_done, (line, m))

    def set_policy(self, line_id: str, policy: Policy) -> None:
        """Let the machines of ``line_id`` decide by ``policy`` from now on (a rule, a plan, an agent).

        Machines the old policy left idle with work waiting are asked at once (cause
        ``policy_changed``); the state changes come out of the next ``run``/``step``.
        """
        self._check_policy(line_id, policy)
        self._line(line_id).set_policy(policy)

    def policy(self, line_id: str) -> Policy:
        """The dispatch policy ``line_id`` decides by now."""
        return self._line(line_id).policy

    def _line(self, line_id: str) -> Line:
        self._check_line(line_id)
        return next(line for line in self._lines if line.line_id == line_id)

    def _check_line(self, line_id: str) -> None:
        if all(spec.id != line_id for spec in self._factory.lines):
            known = ", ".join(spec.id for spec in self._factory.lines)
            msg = f"unknown line {line_id!r} (lines: {known})"
            raise SimulationError(msg)

    def _check_policy(self, line_id: str, policy: Policy) -> None:
        self._check_line(line_id)
        given: object = policy  # agents are often untyped code; check at runtime too
        if not callable(getattr(given, "choose", None)):
            msg = f"policy for {line_id} has no choose(decision) method: {policy!r}"
            raise SimulationError(msg)

    def _on_maintenance_done(self, arg: tuple[Line, Machine]) -> None:
        line, m = arg
        line.remove_down(m, "maintenance", "maintenance_done")

    def inject(self, fault: FaultSpec) -> None:
        """Add a fault: it starts ``fault.start_s`` after the simulation start, or now if that passed."""
        self._injector.inject(fault)

    @property
    def faults(self) -> tuple[FaultRecord, ...]:
        """Ground truth: every fault that has started so far, in start order."""
        return tuple(self._injector.records)

    def fault_rows(self) -> list[dict[str, object]]:
        """``faults`` as JSON-serialisable dicts."""
        return faults_to_rows(self._injector.records)

    # -- observation ----------------------------------------------------------------------------

    def observe(self) -> FactoryObservation:
        now = self._agenda.now
        return FactoryObservation(now, tuple(_observe_line(line, now) for line in self._lines))


def _observe_line(line: Line, now: int) -> LineObservation:
    machines = tuple(
        MachineObservation(
            m.machine_id,
            m.machine_type,
            m.state or "",
            m.reason,
            m.good + m.scrap,
            m.good,
            m.scrap,
            m.cycle_progress(now),
            _held_part(m),
            line.stages[m.stage_index].name,
            m.family,
        )
        for m in line.machines
    )
    queues = line.buffers if line.backlog is None else [line.backlog, *line.buffers]
    buffers = tuple(
        BufferObservation(b.buffer_id, b.upstream_id, b.downstream_id, len(b.parts), b.capacity)
        for b in queues
    )
    policy = line.policy
    plan_id = getattr(policy, "plan_id", None)
    correlation_id = getattr(policy, "correlation_id", None)
    late, late_ms = line.open_lateness()
    return LineObservation(
        line.line_id,
        now,
        machines,
        buffers,
        line.released,
        line.shipped,
        str(getattr(policy, "name", type(policy).__name__)),
        plan_id if isinstance(plan_id, str) else None,
        correlation_id if isinstance(correlation_id, str) else None,
        line.refused,
        line.shipped_late,
        line.tardiness_ms / 1000,
        late,
        late_ms / 1000,
    )


def _held_part(m: Machine) -> str | None:
    held = m.held
    return None if held is None else held.part_id
