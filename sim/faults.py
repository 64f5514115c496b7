"""Fault kinds and the ground-truth record of every fault the simulator injected.

>>> r = FaultRecord("cnc-1", "line-1", "jam", 1_000, 61_000, 0.5)
>>> faults_to_rows([r])[0]["end_ms"]
61000
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    BEARING_WEAR = "bearing_wear"
    """vibration_rms drifts upward while the fault lasts."""
    OVERHEATING = "overheating"
    """Temperature channels settle above normal (with their thermal lag)."""
    TOOL_WEAR = "tool_wear"
    """Cycle time creeps up, load and power rise, more latent defects reach inspection."""
    STUCK_SENSOR = "stuck_sensor"
    """One channel repeats its last value exactly."""
    DROPPED_SENSOR = "dropped_sensor"
    """One channel delivers no value (``None``)."""
    JAM = "jam"
    """The machine is DOWN for the fault's duration."""


SENSOR_FAULTS = frozenset({FaultKind.STUCK_SENSOR, FaultKind.DROPPED_SENSOR})
WEAR_FAULTS = frozenset({FaultKind.BEARING_WEAR, FaultKind.TOOL_WEAR})
"""Faults that grow and, left alone (``FaultSpec.fails``), end in a failure."""


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """Ground truth for one injected fault.

    ``end_ms`` is ``None`` while an open-ended fault is still active; maintenance that repairs a
    fault early moves ``end_ms`` to the start of the maintenance. ``source`` is ``scenario``
    (scheduled in the layout), ``random`` (drawn from the layout's rates) or ``injected`` (``inject``).
    ``failed`` is true once a wear fault ran its course into a failure (the machine went DOWN at
    ``end_ms``, reason ``failure``); maintenance in time leaves it false.
    """

    machine_id: str
    line_id: str
    kind: str
    start_ms: int
    end_ms: int | None
    severity: float
    channel: str | None = None
    source: str = "scenario"
    failed: bool = False

    def active_at(self, time_ms: int) -> bool:
        return self.start_ms <= time_ms and (self.end_ms is None or time_ms < self.end_ms)

    def to_row(self) -> dict[str, object]:
        """JSON-serialisable dict with the field names."""
        return asdict(self)


def faults_to_rows(records: Iterable[FaultRecord]) -> list[dict[str, object]]:
    return [r.to_row() for r in records]
