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
    """The part in process (or set up for), or the finished one waiting to move on; ``None`` when
    empty."""
    stage: str = ""
    """The stage the machine belongs to (its own id on a serial line)."""
    family: str | None = None
    """The product family the machine is set up for (``None``: none yet, or a line without)."""


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
    """The release backlog first (lines with a release process), then the queues between stages."""
    released: int
    """Parts taken from the raw-material source (including the warm-start buffer fill)."""
    shipped: int
    """Good parts that left the last station."""
    policy: str = "fifo"
    """Name of the dispatch policy the line's machines decide by (``sim.dispatch``)."""
    plan_id: str | None = None
    """The adopted plan's id, while the policy follows a plan."""
    plan_correlation_id: str | None = None
    """The correlation id of the adopted plan (the cause it answers)."""
    refused: int = 0
    """Orders turned away because the release backlog was full."""
    shipped_late: int = 0
    """Shipped parts that left after their due date."""
    tardiness_s: float = 0.0
    """Total tardiness of the shipped parts: seconds past due, summed."""
    late_in_line: int = 0
    """Parts still in the line (queued or in a machine) that are past their due date."""
    lateness_in_line_s: float = 0.0
    """How far past due those are now, in seconds, summed."""

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
