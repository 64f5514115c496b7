"""What the KPI windows count: the OEE time model lives in ``twin.oee`` (shared with the Spark jobs)."""

from twin.oee import KpiConfig, TimeKind

__all__ = ["KpiConfig", "TimeKind"]
