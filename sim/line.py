"""Part flow along one line: source, stations, buffers, sink; states, breakdowns, planned stops."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from sim.agenda import Agenda
from sim.buffer import Buffer, Part
from sim.catalog import LATENT_DEFECT_DETECTION
from sim.events import PartProducedEvent, SimEvent, StateChangeEvent
from sim.layout import BreakSpec, LineSpec
from sim.machine import Machine
from sim.seeding import NOISE, PROCESS, generator, stream
from sim.sensors import IDLE, OFF, RUN, SensorBank
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


class Line:
    """One production line. Handlers run at ``agenda.now`` and report through ``emit``."""

    def __init__(
        self, spec: LineSpec, index: int, seed: int, agenda: Agenda, emit: Callable[[SimEvent], None]
    ) -> None:
        self.spec = spec
        self.line_id = spec.id
        self.index = index
        self._agenda = agenda
        self._emit = emit
        self.released = 0
        self.shipped = 0
        self.machines: list[Machine] = []
        for si, station in enumerate(spec.stations):
            interval_ms = max(1, round(station.telemetry_interval_s * 1000))
            bank = SensorBank(station.channels, interval_ms, generator(seed, index, si, NOISE))
            self.machines.append(Machine(station, spec.id, stream(seed, index, si, PROCESS), bank))
        self.buffers: list[Buffer] = []
        for si in range(1, len(self.machines)):
            up, down = self.machines[si - 1], self.machines[si]
            buffer = Buffer(up.machine_id, down.machine_id, spec.buffer_capacity(si))
            self.buffers.append(buffer)
            up.downstream = down.upstream = buffer
            up.next, down.prev = down, up
        for m in self.machines:
            m.ttf_ms = self._draw_ttf(m)

    def start(self) -> None:
        """Warm-start the buffers, put every machine in its first state, schedule planned breaks."""
        # Fill from the end of the line: serial numbers then grow upstream, as if released in order.
        for buffer in reversed(self.buffers):
            for _ in range(round(self.spec.prefill * buffer.capacity)):
                buffer.parts.append(self._release())
        for m in self.machines:
            self.advance(m, "start")
        now = self._agenda.now
        for brk in self.spec.breaks:
            self._agenda.push(now + round(brk.start_s * 1000), self._on_break_start, (brk, self.machines))
        for m in self.machines:
            for brk in m.spec.breaks:
                self._agenda.push(now + round(brk.start_s * 1000), self._on_break_start, (brk, [m]))

    # -- flow ---------------------------------------------------------------------------------

    def advance(self, m: Machine, trigger: str) -> None:
        """Move parts out of and into ``m`` as far as possible, then settle its state."""
        fed_next = freed_prev = False
        if m.finished is not None:
            if m.downstream is None:
                self.shipped += 1
                m.finished = None
            elif not m.downstream.full:
                m.downstream.parts.append(m.finished)
                m.finished = None
                fed_next = True
        if m.part is None and m.finished is None and not (m.down or m.holds or m.setup):
            if m.changeover_due:
                m.setup = True
                duration_s = m.spec.changeover.duration_s if m.spec.changeover else 0.0
                self._agenda.push(self._agenda.now + round(duration_s * 1000), self._on_changeover_done, m)
            elif m.upstream is None:
                self._begin_cycle(m, self._release())
            elif m.upstream.parts:
                self._begin_cycle(m, m.upstream.parts.popleft())
                freed_prev = True
        self._refresh(m, trigger)
        if fed_next and m.next is not None:
            self.advance(m.next, "part_arrived")
        if freed_prev and m.prev is not None:
            self.advance(m.prev, "unblocked")

    def _release(self) -> Part:
        self.released += 1
        return Part(f"{self.line_id}-{self.released:08d}")

    def _begin_cycle(self, m: Machine, part: Part) -> None:
        rng = m.rng
        effects = m.effects_at(self._agenda.now)
        cycle_s = m.ideal_cycle_time_s * (1.0 + m.spec.cycle_time_cv * abs(rng.gauss(0.0, 1.0)))
        m.cycle_ms = max(1, round(cycle_s * effects.cycle_factor * 1000))
        m.remaining_ms = m.cycle_ms
        m.load = min(1.25, max(0.75, 1.0 + LOAD_CV * rng.gauss(0.0, 1.0)))
        m.part = part
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
                m.ideal_cycle_time_s,
                reason is None,
                reason,
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
            # Still DOWN or IDLE, but perhaps for another cause now (maintenance ended during a jam).
            if (state == DOWN and m.reason not in m.down) or (
                state == IDLE_STATE and m.reason not in m.holds
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
        return "changeover"
    if state == BLOCKED:
        return "downstream_full"
    if state == STARVED:
        return "upstream_empty"
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
