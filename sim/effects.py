"""What active faults do to a machine: combined effect factors, and the runtime state of a fault."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sim.faults import FaultKind

RAMP_MS = 1_800_000
"""Wear faults reach full strength after their duration, or after this for open-ended ones."""
MIN_RAMP_MS = 60_000

RAMPING = frozenset({FaultKind.BEARING_WEAR, FaultKind.TOOL_WEAR})


@dataclass(slots=True)
class Effects:
    """What the active faults of a machine do right now, combined."""

    vibration_factor: float = 1.0
    temperature_offset: float = 0.0
    load_factor: float = 1.0
    power_factor: float = 1.0
    cycle_factor: float = 1.0
    scrap_extra: float = 0.0
    latent_defect: float = 0.0


NO_EFFECTS = Effects()


@dataclass(slots=True, eq=False)
class ActiveFault:
    """A fault while it acts on a machine; ``record`` indexes its ground-truth ``FaultRecord``."""

    record: int
    kind: FaultKind
    severity: float
    start_ms: int
    end_ms: int | None
    channel: int | None = None
    stuck_value: float | None = None
    active: bool = True
    fails: bool = False
    """At ``end_ms`` the wear becomes a failure (``FaultSpec.fails``)."""
    repair_ms: int = 0

    def progress(self, now_ms: int) -> float:
        """0 at the start, 1 once a wear fault has fully developed."""
        if self.end_ms is None:
            span = RAMP_MS
        elif self.fails:  # wear that ends in a failure grows until it fails, however slowly
            span = max(self.end_ms - self.start_ms, MIN_RAMP_MS)
        else:
            span = min(max(self.end_ms - self.start_ms, MIN_RAMP_MS), RAMP_MS)
        return min(1.0, max(0.0, (now_ms - self.start_ms) / span))


def combine(faults: Sequence[ActiveFault], now_ms: int) -> Effects:
    """The combined effect of ``faults`` at ``now_ms``; ``NO_EFFECTS`` when nothing acts on the process."""
    effects: Effects | None = None
    for f in faults:
        s = f.severity
        if f.kind is FaultKind.BEARING_WEAR:
            effects = effects or Effects()
            r = f.progress(now_ms)
            effects.vibration_factor *= 1.0 + 3.0 * s * r
            effects.power_factor *= 1.0 + 0.05 * s * r
        elif f.kind is FaultKind.OVERHEATING:
            effects = effects or Effects()
            effects.temperature_offset += 30.0 * s
            effects.scrap_extra += 0.03 * s
            effects.latent_defect += 0.05 * s
        elif f.kind is FaultKind.TOOL_WEAR:
            effects = effects or Effects()
            r = f.progress(now_ms)
            effects.cycle_factor *= 1.0 + 0.3 * s * r
            effects.load_factor *= 1.0 + 0.5 * s * r
            effects.power_factor *= 1.0 + 0.15 * s * r
            effects.scrap_extra += 0.02 * s * r
            effects.latent_defect += 0.1 * s * r
    return effects or NO_EFFECTS
