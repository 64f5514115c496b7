"""What a dispatcher or RL agent can do to the line (``Simulator.act``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pause:
    """Stop the machine now (IDLE, reason ``paused``); a part in process keeps its progress."""

    machine_id: str


@dataclass(frozen=True, slots=True)
class Resume:
    """Undo ``Pause``; resuming a machine that is not paused does nothing."""

    machine_id: str


@dataclass(frozen=True, slots=True)
class StartMaintenance:
    """Take the machine DOWN (reason ``maintenance``) for ``duration_s``: every active fault on it is
    repaired now, and the time to its next random breakdown starts over."""

    machine_id: str
    duration_s: float


Action = Pause | Resume | StartMaintenance
