"""OEE and KPI windows in event time: per machine (``MachineKpis``) and per line (``LineKpis``).

Definitions, edge cases and a worked example: docs/kpis.md.
"""

from __future__ import annotations

from processors.kpi.config import KpiConfig, TimeKind
from processors.kpi.line import LineKpis, line_figures
from processors.kpi.machine import PRODUCTION_TOPIC, STATE_TOPIC, MachineKpis
from processors.kpi.record import FORMAT_VERSION, KPI_TOPIC, SOURCE, Figures, KpiError, window_id

__all__ = [
    "FORMAT_VERSION",
    "KPI_TOPIC",
    "PRODUCTION_TOPIC",
    "SOURCE",
    "STATE_TOPIC",
    "Figures",
    "KpiConfig",
    "KpiError",
    "LineKpis",
    "MachineKpis",
    "TimeKind",
    "line_figures",
    "window_id",
]
