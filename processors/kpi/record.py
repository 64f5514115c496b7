"""One KPI window as a ``kpi_window`` record: the ratios from the raw figures, the derived id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.base import Emit, Record, derived_id, load_snapshot, parse_snapshot
from twin.errors import KpiError
from twin.topics import KPIS

SOURCE = "processor:kpi"


@dataclass(frozen=True, slots=True)
class Figures:
    """The raw figures of one window; every ratio in the record follows from them."""

    planned_ms: int
    run_ms: int
    total: int
    good: int
    ideal_cycle_time_s: float
    mean_cycle_time_s: float | None
    failures: int
    mttr_s: float | None
    late_events: int
    rate_ratio: float | None = None
    """A continuous machine's mean running rate / its nominal rate: its performance (no parts)."""


def _ratio(num: float, den: float) -> float:
    # A ratio whose denominator is 0 is undefined; the schema has no null for it, so 0 (and the
    # record's time and count fields say why). Clamped because the schema promises 0..1.
    return min(1.0, max(0.0, num / den)) if den > 0 else 0.0


def window_id(scope: str, scope_id: str, size_s: int, start_ms: int) -> str:
    return derived_id("kpi", scope, scope_id, size_s, start_ms)


def kpi_emit(scope: str, scope_id: str, line_id: str, size_ms: int, start_ms: int, f: Figures) -> Emit:
    """The ``twin.kpis`` record (plain form, key ``line_id``) of one closed window."""
    size_s = size_ms // 1000
    run_s = f.run_ms / 1000
    planned_s = f.planned_ms / 1000
    availability = _ratio(run_s, planned_s)
    # Performance is clamped too: a short window can end just after parts whose run time fell
    # mostly in the window before, which would read as faster than ideal.
    performance = (
        _ratio(f.ideal_cycle_time_s * f.total, run_s) if f.rate_ratio is None else min(1.0, f.rate_ratio)
    )
    quality = f.good / f.total if f.total else 1.0
    event_id = window_id(scope, scope_id, size_s, start_ms)
    record: Record = {
        "event_id": event_id,
        "event_time": start_ms + size_ms,
        "source": SOURCE,
        "correlation_id": event_id,
        "line_id": line_id,
        "scope": scope,
        "scope_id": scope_id,
        "window_start": start_ms,
        "window_end": start_ms + size_ms,
        "window_size_s": size_s,
        "planned_time_s": planned_s,
        "run_time_s": run_s,
        "total_count": f.total,
        "good_count": f.good,
        "ideal_cycle_time_s": f.ideal_cycle_time_s,
        "availability": availability,
        "performance": performance,
        "quality": quality,
        "oee": availability * performance * quality,
        "throughput_per_hour": f.good * 3_600_000 / size_ms,
        "mean_cycle_time_s": f.mean_cycle_time_s,
        "scrap_rate": (f.total - f.good) / f.total if f.total else 0.0,
        "failures": f.failures,
        "mtbf_s": run_s / f.failures if f.failures else None,
        "mttr_s": f.mttr_s,
        "late_events": f.late_events,
    }
    return Emit(KPIS, line_id, record)


def get_str(record: Record, name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        raise KpiError(_bad(name, value, "a string"))
    return value


def get_int(record: Record, name: str) -> int:
    value = record.get(name)
    # bool is an int subclass; a true/false here is a wrong field, not a timestamp.
    if isinstance(value, bool) or not isinstance(value, int):
        raise KpiError(_bad(name, value, "an integer (plain form: epoch ms for times)"))
    return value


def get_float(record: Record, name: str) -> float:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KpiError(_bad(name, value, "a number"))
    return float(value)


def get_opt_float(record: Record, name: str) -> float | None:
    return None if record.get(name) is None else get_float(record, name)


def _bad(name: str, value: object, expected: str) -> str:
    return f"KPI input: field {name!r} is {value!r}, expected {expected}"


def load_kpi_snapshot(data: bytes, fmt: str, version: int) -> dict[str, Any]:
    """A KPI snapshot's document. Before the versioned names, both KPI processors wrote
    ``{"format": 1, "kind": "machine-kpis"}`` (or ``"line-kpis"``) with the same fields: version 1."""
    doc = parse_snapshot(data, fmt)
    if doc.get("format") == 1 and doc.get("kind") == fmt:
        doc = {**doc, "format": fmt, "version": 1}
        del doc["kind"]
    return load_snapshot(doc, fmt, version)
