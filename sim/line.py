"""Part flow along one line: stages of machines, the queues between them, the source and sink;
states, setups, breakdowns, planned stops; and where dispatch decisions are asked for.

A serial line has one machine per stage. A hybrid flow shop has parallel machines at a stage,
sharing the queue in front of it; what a free machine takes from its queue is its line's
``Policy``'s choice (``sim.dispatch``), FIFO unless set otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from sim.agenda import Agenda
from sim.buffer import Buffer, Part
from sim.catalog import LATENT_DEFECT_DETECTION
from sim.dispatch import (
    Decision,
    DecisionCause,
    FifoPolicy,
    Policy,
    QueueItem,
    checked_choice,
    policy_by_name,
)
from sim.events import PartProducedEvent, SimEvent, StateChangeEvent
from sim.layout import BreakSpec, LineSpec
from sim.machine import Machine
from sim.seeding import NOISE, PROCESS, RELEASE, generator, stream
from sim.sensors import IDLE, OFF, RUN, SensorBank
from sim.shop import ProductMix, Stage
from sim.states import MachineState

RUNNING = MachineState.RUNNING.value
IDLE_STATE = MachineState.IDLE.value
STARVED = MachineState.STARVED.value
BLOCKED = MachineState.BLOCKED.value
DOWN = MachineState.DOWN.value
SETUP = MachineState.SETUP.value

LOAD_CV = 0.05
"""Part-to-part variation of the load a part puts on a machine (material, fixturing)."""
REPAIR_SIGMA = 0.5
"""Log-normal spread of breakdown repair times around ``mttr_s``."""
DISPATCH_WAIT = "dispatch_wait"
"""STARVED reason of a machine its policy left idle although work waits."""

_CAUSES = {
    "start": DecisionCause.START,
    "part_arrived": DecisionCause.PART_ARRIVED,
    "machine_failed": DecisionCause.MACHINE_FAILED,
    "policy_changed": DecisionCause.POLICY_CHANGED,
}


class Line:
    """One production line. Handlers run at ``agenda.now`` and report through ``emit``."""

    def __init__(
        self,
        spec: LineSpec,
        index: int,
        seed: int,
        agenda: Agenda,
        emit: Callable[[SimEvent], None],
        policy: Policy | None = None,
    ) -> None:
        self.spec = spec
        self.line_id = spec.id
        self.index = index
        self._agenda = agenda
        self._emit = emit
        self.policy: Policy = policy if policy is not None else policy_by_name(spec.dispatch)
        self._fifo = type(self.policy) is FifoPolicy
        self.mix = ProductMix(spec)
        self._plain = not spec.families and spec.release is None
        self._family_rng = stream(seed, index, 0, RELEASE)
        self._order_rng = stream(seed, index, 0, RELEASE, 1)
        self.released = 0
        self.shipped = 0
        self.orders = 0
        self.refused = 0
        self.shipped_late = 0
        self.tardiness_ms = 0
        self.machines: list[Machine] = []
        for si, station in enumerate(spec.stations):
            interval_ms = max(1, round(station.telemetry_interval_s * 1000))
            bank = SensorBank(station.channels, interval_ms, generator(seed, index, si, NOISE))
            m = Machine(station, spec.id, stream(seed, index, si, PROCESS), bank)
            m.nominal_s = self.mix.nominal_s[si]
            self.machines.append(m)
        self.stages: list[Stage] = []
        self.buffers: list[Buffer] = []
        """The queues between stages, in flow order."""
        self.backlog: Buffer | None = None
        """The orders waiting for the first stage (lines with a release process)."""
        for k, (name, members) in enumerate(spec.stages()):
            machines = [self.machines[si] for si in members]
            queue: Buffer | None = None
            if k == 0:
                if spec.release is not None:
                    queue = self.backlog = Buffer("orders", name, spec.release.backlog)
            else:
                before = self.stages[-1]
                queue = Buffer(before.name, name, spec.buffer_capacity(members[0]))
                queue.producers = before.machines
                for m in before.machines:
                    m.downstream = queue
                self.buffers.append(queue)
            if queue is not None:
                queue.consumers = machines
            for m in machines:
                m.upstream = queue
                m.stage_index = k
            self.stages.append(Stage(k, name, machines, queue))
        for m in self.machines:
            m.ttf_ms = self._draw_ttf(m)

    def start(self) -> None:
        """Warm-start the buffers, put every machine in its first state, schedule planned breaks."""
        # Fill from the end of the line: serial numbers then grow upstream, as if released in order.
        for buffer in reversed(self.buffers):
            for _ in range(round(self.spec.prefill * buffer.capacity)):
                buffer.parts.append(self._release())
        release = self.spec.release
        if release is not None:
            # The whole backlog is there before any machine chooses from it.
            for _ in range(release.initial_orders):
                self._order(ask=False)
        for m in self.machines:
            self.advance(m, "start")
        now = self._agenda.now
        for brk in self.spec.breaks:
            self._agenda.push(now + round(brk.start_s * 1000), self._on_break_start, (brk, self.machines))
        for m in self.machines:
            for brk in m.spec.breaks:
                self._agenda.push(now + round(brk.start_s * 1000), self._on_break_start, (brk, [m]))
        if release is not None and release.interarrival_s is not None:
            self._next_order()

    def set_policy(self, policy: Policy) -> None:
        """Decide by ``policy`` from now on; machines left idle by the old one are asked again."""
        self.policy = policy
        self._fifo = type(policy) is FifoPolicy
        self._redispatch("policy_changed")

    # -- flow ---------------------------------------------------------------------------------

    def advance(self, m: Machine, trigger: str) -> None:
        """Move parts out of and into ``m`` as far as possible, then settle its state."""
        fed_next = m.finished is not None and self._hand_on(m, m.finished)
        freed_prev = False
        if m.part is None and m.finished is None and not (m.down or m.holds or m.setup):
            freed_prev = self._take(m, trigger)
        self._refresh(m, trigger)
        if fed_next and m.downstream is not None:
            for consumer in m.downstream.consumers:
                self.advance(consumer, "part_arrived")
        if freed_prev and m.upstream is not None:
            producers = m.upstream.producers
            if len(producers) == 1:
                self.advance(producers[0], "unblocked")
            elif producers:
                self._unblock(m.upstream)

    def _hand_on(self, m: Machine, done: Part) -> bool:
        """Ship ``m``'s finished part or put it in the next queue; whether it fed that queue."""
        downstream = m.downstream
        if downstream is None:
            self._ship(done)
            m.finished = None
        elif not downstream.full:
            done.arrived_ms = self._agenda.now
            downstream.parts.append(done)
            m.finished = None
            return True
        return False

    def _take(self, m: Machine, trigger: str) -> bool:
        """Give the free machine ``m`` its next work: a due changeover, a fresh part from the source,
        or the part its policy picks from its queue; whether a part left that queue."""
        if m.changeover_due:
            m.setup = True
            m.setup_reason = "changeover"
            duration_s = m.spec.changeover.duration_s if m.spec.changeover else 0.0
            self._agenda.push(self._agenda.now + round(duration_s * 1000), self._on_changeover_done, m)
            return False
        upstream = m.upstream
        part: Part | None
        if upstream is None:
            part = self._release()
        elif not upstream.parts:
            m.dispatch_wait = False
            return False
        elif self._fifo:
            # FifoPolicy's answer is the earliest arrival, and a queue is in arrival order: its head,
            # known without building the Decision (serial lines stay as fast as before).
            m.dispatch_wait = False
            part = upstream.parts.popleft()
        else:
            part = self._dispatch(m, upstream, trigger)
            if part is None:
                return False
        if part.family is None:
            self._begin_cycle(m, part)
        else:
            self._load(m, part)
        return upstream is not None

    def _unblock(self, buffer: Buffer) -> None:
        """A part left ``buffer``: let the machines blocked on it hand on theirs, earliest first."""
        blocked = sorted((p for p in buffer.producers if p.finished is not None), key=lambda p: p.finished_ms)
        for p in blocked:
            if buffer.full:
                break
            self.advance(p, "unblocked")

    def _dispatch(self, m: Machine, queue: Buffer, trigger: str) -> Part | None:
        """Ask the line's policy which part of ``queue`` the free machine ``m`` takes."""
        parts = queue.parts
        stage = self.stages[m.stage_index]
        decision = Decision(
            self._agenda.now,
            self.line_id,
            m.machine_id,
            _CAUSES.get(trigger, DecisionCause.MACHINE_FREE),
            tuple([self._item(m, stage.index, p) for p in parts]),
            stage.name,
            m.family,
            stage.machine_ids,
        )
        choice = self.policy.choose(decision)
        if choice is None:
            m.dispatch_wait = True
            return None
        m.dispatch_wait = False
        if choice == 0 and type(choice) is int:
            return parts.popleft()
        index = checked_choice(choice, len(parts), self.policy, decision)
        part = parts[index]
        del parts[index]
        return part

    def _item(self, m: Machine, k: int, part: Part) -> QueueItem:
        item = part.item
        if item is not None and part.item_for is m and part.item_family == m.family:
            return item
        family = part.family
        processing_s = m.nominal_s[family]
        item = part.item = QueueItem(
            part.part_id,
            family,
            k,
            processing_s,
            self.mix.setup_s(k, m.family, family),
            part.due_ms,
            part.arrived_ms,
            part.released_ms,
            processing_s + self.mix.later_s[family][k],
            len(self.stages) - k,
            part.correlation_id,
        )
        part.item_for = m
        part.item_family = m.family
        return item

    def _redispatch(self, trigger: str) -> None:
        """Ask again every machine its policy left idle with work waiting."""
        for m in self.machines:
            if m.dispatch_wait:
                self.advance(m, trigger)

    def _load(self, m: Machine, part: Part) -> None:
        """Start ``part`` (of a family) on ``m``, after the setup its family needs there."""
        family = part.family
        if family != m.family:
            setup_s = self.mix.setup_s(m.stage_index, m.family, family)
            if setup_s > 0:
                m.setup = True
                m.setup_reason = f"setup:{m.family}->{family}"
                m.staged = part
                self._agenda.push(self._agenda.now + max(1, round(setup_s * 1000)), self._on_setup_done, m)
                return
            m.family = family
        self._begin_cycle(m, part)

    def _on_setup_done(self, m: Machine) -> None:
        part = m.staged
        m.setup = False
        m.staged = None
        if part is not None:
            m.family = part.family
            self._begin_cycle(m, part)
        self.advance(m, "setup_done")

    def _release(self) -> Part:
        self.released += 1
        part_id = f"{self.line_id}-{self.released:08d}"
        now = self._agenda.now
        if self._plain:
            return Part(part_id, now)
        family = self.mix.draw(self._family_rng)
        return Part(part_id, now, family, self.mix.due_ms(family, now))

    def _order(self, *, ask: bool = True) -> None:
        """An order arrives: into the backlog (and ``ask`` the first stage's idle machines), or
        turned away when the backlog is full."""
        backlog = self.backlog
        if backlog is None:
            return
        self.orders += 1
        if backlog.full:
            self.refused += 1
            return
        backlog.parts.append(self._release())
        if ask:
            for m in backlog.consumers:
                self.advance(m, "part_arrived")

    def _next_order(self) -> None:
        release = self.spec.release
        if release is None or release.interarrival_s is None:
            return
        if release.max_orders is not None and self.orders >= release.max_orders:
            return
        gap_ms = max(1, round(self._order_rng.expovariate(1.0 / release.interarrival_s) * 1000))
        self._agenda.push(self._agenda.now + gap_ms, self._on_order)

    def _on_order(self, _: None) -> None:
        self._order()
        self._next_order()

    def open_lateness(self) -> tuple[int, int]:
        """Parts in the line (queued or in a machine) past their due date now, and their total
        milliseconds past due."""
        now = self._agenda.now
        late = late_ms = 0
        queues = self.buffers if self.backlog is None else [self.backlog, *self.buffers]
        held = (m.held for m in self.machines)
        for part in (*(p for q in queues for p in q.parts), *held):
            if part is not None and part.due_ms is not None and part.due_ms < now:
                late += 1
                late_ms += now - part.due_ms
        return late, late_ms

    def _ship(self, part: Part) -> None:
        self.shipped += 1
        if part.due_ms is not None and self._agenda.now > part.due_ms:
            self.shipped_late += 1
            self.tardiness_ms += self._agenda.now - part.due_ms

    def _begin_cycle(self, m: Machine, part: Part) -> None:
        rng = m.rng
        effects = m.effects_at(self._agenda.now)
        nominal_s = m.ideal_cycle_time_s if part.family is None else m.nominal_s[part.family]
        cycle_s = nominal_s * (1.0 + m.spec.cycle_time_cv * abs(rng.gauss(0.0, 1.0)))
        m.cycle_ms = max(1, round(cycle_s * effects.cycle_factor * 1000))
        m.remaining_ms = m.cycle_ms
        m.load = min(1.25, max(0.75, 1.0 + LOAD_CV * rng.gauss(0.0, 1.0)))
        m.part = part
        m.part_ideal_s = nominal_s
        m.targets_dirty = True

    def _on_cycle_end(self, arg: tuple[Machine, int]) -> None:
        m, epoch = arg
        if epoch != m.epoch:
            return
        self._stop_running(m)
        part = m.part
        m.part = None
        if part is not None:
            self._finish(m, part)
        self.advance(m, "cycle_start")

    def _finish(self, m: Machine, part: Part) -> None:
        """Scrap is decided when the cycle ends; a scrapped part leaves the line here."""
        rng = m.rng
        effects = m.effects_at(self._agenda.now)
        reason: str | None = None
        if m.inspects and part.defect is not None and rng.random() < LATENT_DEFECT_DETECTION:
            reason = part.defect
        elif rng.random() < m.spec.scrap_probability + effects.scrap_extra:
            reason = m.defect_reason
        elif effects.latent_defect > 0.0 and part.defect is None and rng.random() < effects.latent_defect:
            part.defect = m.defect_reason
        if reason is None:
            m.good += 1
            m.finished = part
            m.finished_ms = self._agenda.now
        else:
            m.scrap += 1
        m.since_changeover += 1
        if m.spec.changeover is not None and m.since_changeover >= m.spec.changeover.every_parts:
            m.changeover_due = True
        self._emit(
            PartProducedEvent(
                self._agenda.now,
                self.line_id,
                m.machine_id,
                part.part_id,
                m.cycle_ms / 1000,
                m.part_ideal_s,
                reason is None,
                reason,
                part.family,
                part.due_ms,
            )
        )

    # -- state ----------------------------------------------------------------------------------

    def _refresh(self, m: Machine, trigger: str) -> None:
        if m.down:
            state = DOWN
        elif m.setup:
            state = SETUP
        elif m.holds:
            state = IDLE_STATE
        elif m.part is not None:
            state = RUNNING
        elif m.finished is not None:
            state = BLOCKED
        else:
            state = STARVED
        running = state == RUNNING
        if m.active and not running:
            self._stop_running(m)
        elif running and not m.active:
            self._start_running(m)
        if state == m.state:
            # Still DOWN, IDLE or STARVED, but perhaps for another cause now (maintenance ended during
            # a jam; the policy now leaves the machine idle on purpose, or no longer).
            if (
                (state == DOWN and m.reason not in m.down)
                or (state == IDLE_STATE and m.reason not in m.holds)
                or (state == STARVED and m.dispatch_wait != (m.reason == DISPATCH_WAIT))
            ):
                m.reason = _reason(m, state, trigger)
            return
        previous = m.state
        reason = "start" if previous is None else _reason(m, state, trigger)
        m.state = state
        m.reason = reason
        m.mode = RUN if running else OFF if state == DOWN else IDLE
        m.targets_dirty = True
        self._emit(StateChangeEvent(self._agenda.now, self.line_id, m.machine_id, previous, state, reason))

    def _start_running(self, m: Machine) -> None:
        now = self._agenda.now
        m.active = True
        m.run_since = now
        m.epoch += 1
        self._agenda.push(now + m.remaining_ms, self._on_cycle_end, (m, m.epoch))
        if m.ttf_ms is not None:
            self._agenda.push(now + max(1, m.ttf_ms), self._on_breakdown, (m, m.epoch))

    def _stop_running(self, m: Machine) -> None:
        elapsed = self._agenda.now - m.run_since
        m.remaining_ms = max(0, m.remaining_ms - elapsed)
        if m.ttf_ms is not None:
            m.ttf_ms = max(0, m.ttf_ms - elapsed)
        m.active = False
        m.epoch += 1

    # -- stops ----------------------------------------------------------------------------------

    def add_down(self, m: Machine, cause: str) -> None:
        _acquire(m.down, cause)
        self._refresh(m, cause)
        self._redispatch("machine_failed")

    def remove_down(self, m: Machine, cause: str, trigger: str) -> None:
        _release(m.down, cause)
        self.advance(m, trigger)

    def add_hold(self, m: Machine, cause: str) -> None:
        _acquire(m.holds, cause)
        self._refresh(m, cause)

    def remove_hold(self, m: Machine, cause: str, trigger: str) -> None:
        _release(m.holds, cause)
        self.advance(m, trigger)

    def renew_ttf(self, m: Machine) -> None:
        """Maintenance renews the machine: the time to the next breakdown starts over."""
        if m.ttf_ms is not None:
            m.ttf_ms = self._draw_ttf(m)

    def _draw_ttf(self, m: Machine) -> int | None:
        if m.spec.mtbf_s is None:
            return None
        return max(1, round(m.rng.expovariate(1.0 / m.spec.mtbf_s) * 1000))

    def _on_breakdown(self, arg: tuple[Machine, int]) -> None:
        m, epoch = arg
        if epoch != m.epoch:
            return
        self.add_down(m, "breakdown")
        m.ttf_ms = None
        mu = math.log(m.spec.mttr_s) - REPAIR_SIGMA**2 / 2
        repair_ms = max(1000, round(m.rng.lognormvariate(mu, REPAIR_SIGMA) * 1000))
        self._agenda.push(self._agenda.now + repair_ms, self._on_repaired, m)

    def _on_repaired(self, m: Machine) -> None:
        m.ttf_ms = self._draw_ttf(m)
        self.remove_down(m, "breakdown", "repaired")

    def _on_changeover_done(self, m: Machine) -> None:
        m.setup = False
        m.changeover_due = False
        m.since_changeover = 0
        self.advance(m, "changeover_done")

    def _on_break_start(self, arg: tuple[BreakSpec, Sequence[Machine]]) -> None:
        brk, machines = arg
        now = self._agenda.now
        for m in machines:
            self.add_hold(m, "planned_break")
        self._agenda.push(now + round(brk.duration_s * 1000), self._on_break_end, machines)
        if brk.every_s is not None:
            self._agenda.push(now + round(brk.every_s * 1000), self._on_break_start, arg)

    def _on_break_end(self, machines: Sequence[Machine]) -> None:
        for m in machines:
            self.remove_hold(m, "planned_break", "break_over")


def _reason(m: Machine, state: str, trigger: str) -> str:
    if state == DOWN:
        return trigger if trigger in m.down else next(iter(m.down))
    if state == IDLE_STATE:
        return trigger if trigger in m.holds else next(iter(m.holds))
    if state == SETUP:
        return m.setup_reason
    if state == BLOCKED:
        return "downstream_full"
    if state == STARVED:
        return DISPATCH_WAIT if m.dispatch_wait else "upstream_empty"
    return trigger


def _acquire(causes: dict[str, int], cause: str) -> None:
    # Causes are reference-counted: two overlapping stops of one kind end only when both have.
    causes[cause] = causes.get(cause, 0) + 1


def _release(causes: dict[str, int], cause: str) -> None:
    left = causes.get(cause, 0) - 1
    if left > 0:
        causes[cause] = left
    else:
        causes.pop(cause, None)
