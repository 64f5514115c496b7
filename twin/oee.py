"""The OEE time model: how machine states map to OEE time, plus the KPI windows' sizes and lateness.

One definition for the stream (``processors.kpi``, docs/kpis.md) and the batch analytics
(``jobs/spark``, docs/analytics.md), so a day's OEE is the same whichever computed it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from twin.errors import ConfigError


class TimeKind(IntEnum):
    """Where a stretch of machine time goes in the OEE time model."""

    UNKNOWN = 0
    """No state reported yet: not planned, so it cannot count as a loss."""
    PLANNED_STOP = 1
    """Not scheduled for production (a break): outside planned production time."""
    UNPLANNED_STOP = 2
    """Scheduled but stopped (breakdown, jam, changeover): an availability loss."""
    RUN = 3
    """Scheduled and not stopped; slow or idle running here is a performance loss."""


@dataclass(frozen=True, slots=True)
class KpiConfig:
    """Window sizes, lateness, and the state classification (see docs/kpis.md).

    A state interval is a planned stop if its reason is in ``planned_stop_reasons`` or its state in
    ``planned_stop_states`` (this wins over the rest); else an unplanned stop if its state is in
    ``unplanned_stop_states``; else run time (RUNNING, STARVED, BLOCKED by default). An unplanned stop
    is also a *failure* (for MTBF/MTTR) if its state is in ``failure_states`` and its reason is not in
    ``non_failure_reasons``.

    >>> KpiConfig().classify("DOWN", "breakdown")
    (<TimeKind.UNPLANNED_STOP: 2>, True)
    >>> KpiConfig().classify("IDLE", "planned_break")
    (<TimeKind.PLANNED_STOP: 1>, False)
    """

    window_sizes_s: tuple[int, ...] = (60, 3600)
    allowed_lateness_s: float = 120.0
    planned_stop_reasons: frozenset[str] = frozenset({"planned_break"})
    planned_stop_states: frozenset[str] = frozenset()
    # SETUP: changeovers are an availability loss in the classic six big losses (SMED targets them);
    # IDLE without a planned reason (an operator or agent pause) is time the machine could have worked.
    unplanned_stop_states: frozenset[str] = frozenset({"DOWN", "SETUP", "IDLE"})
    failure_states: frozenset[str] = frozenset({"DOWN"})
    # Maintenance is ordered, not suffered: it costs availability but is not a failure for MTBF.
    non_failure_reasons: frozenset[str] = frozenset({"maintenance"})

    def __post_init__(self) -> None:
        sizes = self.window_sizes_s
        if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in sizes):
            msg = f"KPI window sizes must be positive whole seconds, got {sizes!r}"
            raise ConfigError(msg)
        if len(set(sizes)) != len(sizes):
            msg = f"KPI window sizes must be distinct, got {sizes!r}"
            raise ConfigError(msg)
        lateness = self.allowed_lateness_s
        if not math.isfinite(lateness) or lateness < 0:
            msg = f"KPI allowed lateness must be a finite number of seconds >= 0, got {lateness!r}"
            raise ConfigError(msg)

    @property
    def lateness_ms(self) -> int:
        return round(self.allowed_lateness_s * 1000)

    @property
    def sizes_ms(self) -> tuple[int, ...]:
        return tuple(sorted(s * 1000 for s in self.window_sizes_s))

    def classify(self, state: str | None, reason: str) -> tuple[TimeKind, bool]:
        """The time kind of an interval in ``state`` for ``reason``, and whether it is a failure."""
        if state is None:
            return TimeKind.UNKNOWN, False
        if reason in self.planned_stop_reasons or state in self.planned_stop_states:
            return TimeKind.PLANNED_STOP, False
        if state in self.unplanned_stop_states:
            failure = state in self.failure_states and reason not in self.non_failure_reasons
            return TimeKind.UNPLANNED_STOP, failure
        return TimeKind.RUN, False
