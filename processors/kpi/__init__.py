"""OEE and KPI windows in event time: per machine (``MachineKpis``) and per line (``LineKpis``).

Definitions, edge cases and a worked example: docs/kpis.md.
"""

from __future__ import annotations

from processors.kpi.config import KpiConfig, TimeKind
from processors.kpi.line import LineKpis, line_figures
from processors.kpi.machine import MachineKpis
from processors.kpi.record import SOURCE, Figures, window_id

__all__ = [
    "SOURCE",
    "Figures",
    "KpiConfig",
    "LineKpis",
    "MachineKpis",
    "TimeKind",
    "line_figures",
    "window_id",
]
