"""Snapshots of the simulator's state (``Simulator.observe``): what an agent or dashboard sees.

They carry no fault ground truth, so an agent cannot read the answer from its observation.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MachineObservation:
    machine_id: str
    machine_type: str
    state: str
    reason: str
    parts_done: int
    good: int
    scrap: int
    cycle_progress: float
    """0 with no part, in (0, 1) while processing, 1 when holding a finished part (BLOCKED)."""
    part_id: str | None
    """The part in process, or the finished one waiting to move on; ``None`` when empty."""


@dataclass(frozen=True, slots=True)
class BufferObservation:
    buffer_id: str
    upstream_id: str
    downstream_id: str
    level: int
    capacity: int


@dataclass(frozen=True, slots=True)
class LineObservation:
    line_id: str
    time_ms: int
    machines: tuple[MachineObservation, ...]
    buffers: tuple[BufferObservation, ...]
    released: int
    """Parts taken from the raw-material source (including the warm-start buffer fill)."""
    shipped: int
    """Good parts that left the last station."""

    def machine(self, machine_id: str) -> MachineObservation:
        for m in self.machines:
            if m.machine_id == machine_id:
                return m
        raise KeyError(machine_id)


@dataclass(frozen=True, slots=True)
class FactoryObservation:
    time_ms: int
    lines: tuple[LineObservation, ...]

    def line(self, line_id: str) -> LineObservation:
        for line in self.lines:
            if line.line_id == line_id:
                return line
        raise KeyError(line_id)

    def machine(self, machine_id: str) -> MachineObservation:
        for line in self.lines:
            for m in line.machines:
                if m.machine_id == machine_id:
                    return m
        raise KeyError(machine_id)
