"""Fault injection: scheduled, random and on-demand faults, their effects, and the ground truth."""

from __future__ import annotations

import random
from dataclasses import replace

from sim.agenda import Agenda
from sim.effects import ActiveFault
from sim.faults import SENSOR_FAULTS, FaultKind, FaultRecord
from sim.layout import FactorySpec, FaultSpec, RandomFaultsSpec, fault_problem
from sim.line import Line
from sim.machine import Machine
from sim.seeding import FAULT, RANDOM_FAULT, stream
from twin.errors import SimulationError

KINDS = tuple(FaultKind)


class Injector:
    """Starts and ends faults on the machines of ``lines``; ``records`` is the ground truth, in start
    order."""

    def __init__(
        self, factory: FactorySpec, lines: list[Line], seed: int, agenda: Agenda, start_ms: int
    ) -> None:
        self._agenda = agenda
        self._start_ms = start_ms
        self._seed = seed
        self.records: list[FaultRecord] = []
        self._where: dict[str, tuple[Line, Machine, random.Random]] = {}
        for line in lines:
            for si, m in enumerate(line.machines):
                self._where[m.machine_id] = (line, m, stream(seed, line.index, si, FAULT))
        self._scenario = factory.scenario
        for spec in factory.scenario.faults:
            self._agenda.push(self._scenario_time(spec, 0), self._on_scenario, (spec, 0))
        if factory.random_faults is not None:
            self._schedule_random(factory.random_faults)

    def locate(self, machine_id: str) -> tuple[Line, Machine]:
        try:
            line, m, _ = self._where[machine_id]
        except KeyError:
            known = ", ".join(self._where)
            msg = f"unknown machine {machine_id!r} (machines: {known})"
            raise SimulationError(msg) from None
        return line, m

    def inject(self, spec: FaultSpec) -> None:
        """Start ``spec`` at ``start_s`` after the simulation start, or now if that has passed."""
        _, m = self.locate(spec.machine)
        problem = fault_problem(spec.kind, spec.channel, m.spec)
        if problem:
            msg = f"cannot inject {spec.kind.value} into {spec.machine}: {problem}"
            raise SimulationError(msg)
        start = self._start_ms + round(spec.start_s * 1000)
        if start <= self._agenda.now:
            self._start(spec, "injected")
        else:
            self._agenda.push(start, self._on_injected, spec)

    def repair(self, m: Machine) -> None:
        """End every active fault of ``m`` now (maintenance)."""
        now = self._agenda.now
        line, _ = self.locate(m.machine_id)
        for fault in list(m.faults):
            if not fault.active:
                continue  # a failed wear fault: its own repair ends it
            record = self.records[fault.record]
            if record.end_ms is None or record.end_ms > now:
                self.records[fault.record] = replace(record, end_ms=now)
            self._end(line, m, fault)

    # -- scheduling -----------------------------------------------------------------------------

    def _scenario_time(self, spec: FaultSpec, repeat: int) -> int:
        period = self._scenario.repeat_every_s or 0.0
        return self._start_ms + round((spec.start_s + repeat * period) * 1000)

    def _on_scenario(self, arg: tuple[FaultSpec, int]) -> None:
        spec, repeat = arg
        self._start(spec, "scenario")
        if self._scenario.repeat_every_s is not None:
            self._agenda.push(self._scenario_time(spec, repeat + 1), self._on_scenario, (spec, repeat + 1))

    def _on_injected(self, spec: FaultSpec) -> None:
        self._start(spec, "injected")

    def _schedule_random(self, rates: RandomFaultsSpec) -> None:
        machines = rates.machines if rates.machines is not None else tuple(self._where)
        for machine_id in machines:
            line, m, _ = self._where[machine_id]
            position = line.machines.index(m)
            for ki, kind in enumerate(KINDS):
                per_hour = rates.rates_per_hour.get(kind, 0.0)
                if per_hour <= 0 or fault_problem(kind, None, m.spec) is not None:
                    continue
                rng = stream(self._seed, line.index, position, RANDOM_FAULT, ki)
                self._next_random((m, kind, per_hour, rates, rng))

    def _next_random(self, arg: tuple[Machine, FaultKind, float, RandomFaultsSpec, random.Random]) -> None:
        rng, per_hour = arg[4], arg[2]
        gap_ms = max(1, round(rng.expovariate(per_hour / 3600) * 1000))
        self._agenda.push(self._agenda.now + gap_ms, self._on_random, arg)

    def _on_random(self, arg: tuple[Machine, FaultKind, float, RandomFaultsSpec, random.Random]) -> None:
        m, kind, _, rates, rng = arg
        spec = FaultSpec(
            machine=m.machine_id,
            kind=kind,
            start_s=(self._agenda.now - self._start_ms) / 1000,
            duration_s=rates.duration_s(kind) * rng.uniform(0.5, 1.5),
            severity=rng.uniform(rates.severity_min, rates.severity_max),
        )
        self._start(spec, "random", rng)
        self._next_random(arg)

    # -- effects --------------------------------------------------------------------------------

    def _start(self, spec: FaultSpec, source: str, rng: random.Random | None = None) -> None:
        line, m, fault_rng = self._where[spec.machine]
        now = self._agenda.now
        channel: int | None = None
        if spec.kind in SENSOR_FAULTS:
            name = spec.channel if spec.channel is not None else (rng or fault_rng).choice(m.bank.names)
            channel = m.bank.index(name)
        end = None if spec.duration_s is None else now + max(1, round(spec.duration_s * 1000))
        fault = ActiveFault(len(self.records), spec.kind, spec.severity, now, end, channel)
        fault.fails = spec.fails
        fault.repair_ms = max(1, round(spec.repair_s * 1000))
        if spec.kind is FaultKind.STUCK_SENSOR and channel is not None:
            fault.stuck_value = m.bank.current(channel)
        self.records.append(
            FaultRecord(
                m.machine_id,
                m.line_id,
                spec.kind.value,
                now,
                end,
                spec.severity,
                None if channel is None else m.bank.names[channel],
                source,
            )
        )
        m.faults.append(fault)
        m.faults_changed()
        if spec.kind is FaultKind.JAM:
            line.add_down(m, "jam")
        if end is not None:
            self._agenda.push(end, self._on_end, (line, m, fault))

    def _on_end(self, arg: tuple[Line, Machine, ActiveFault]) -> None:
        line, m, fault = arg
        if not fault.active:
            return  # repaired early (maintenance)
        if fault.fails:
            # Run to failure: DOWN now; the wear keeps acting until the repair ends it.
            self.records[fault.record] = replace(self.records[fault.record], failed=True)
            fault.active = False
            line.add_down(m, "failure")
            self._agenda.push(self._agenda.now + fault.repair_ms, self._on_repaired, (line, m, fault))
            return
        self._end(line, m, fault)

    def _on_repaired(self, arg: tuple[Line, Machine, ActiveFault]) -> None:
        line, m, fault = arg
        if fault in m.faults:
            m.faults.remove(fault)
            m.faults_changed()
        line.remove_down(m, "failure", "repaired")

    def _end(self, line: Line, m: Machine, fault: ActiveFault) -> None:
        fault.active = False
        m.faults.remove(fault)
        m.faults_changed()
        if fault.kind is FaultKind.JAM:
            line.remove_down(m, "jam", "jam_cleared")
