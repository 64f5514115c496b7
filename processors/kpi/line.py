"""LINE-scope KPI windows, rolled up from the machines' MACHINE-scope windows.

Line OEE is measured at the constraint: the machine with the longest ideal cycle time sets the
line's planned and run time and its ideal rate; with a layout (the ordered machine list) the output
is what leaves the last station, and scrap anywhere on the line is a quality loss. Without a layout
the line is its constraint. See docs/kpis.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from processors.base import Emit, Record, dump_snapshot
from processors.kpi.config import KpiConfig
from processors.kpi.record import Figures, get_int, get_str, kpi_emit, load_kpi_snapshot
from twin.errors import KpiError, SnapshotError
from twin.topics import KPIS

SNAPSHOT_FORMAT = "line-kpis"
SNAPSHOT_VERSION = 1

_Key = tuple[int, int]
"""(window size ms, window start ms)."""


@dataclass(slots=True)
class _Line:
    line_id: str
    progress: dict[str, int] = field(default_factory=dict)
    """Per machine: the latest window end it reported (its watermark as seen by the line)."""
    floor: int | None = None
    """A watermark restored from a snapshot: the line never goes back behind it."""
    windows: dict[_Key, dict[str, Record]] = field(default_factory=dict)
    """Open line windows: the MACHINE-scope records received so far, by machine id."""
    emitted: set[_Key] = field(default_factory=set)
    """Windows emitted early (every expected machine reported) that the watermark has not passed."""
    late: dict[int, int] = field(default_factory=dict)
    members: dict[int, list[str]] = field(default_factory=dict)
    """Per size: the machines of the last emitted window, expected again when there is no layout."""


class LineKpis:
    """One line's OEE and KPI windows from its machines' MACHINE-scope ``kpi_window`` records.

    A line window is emitted as soon as every expected machine reported it (``stations``, the
    line's layout; without one, the machines of the line's previous window of that size), else when
    the line's watermark passes its end + allowed lateness.
    """

    def __init__(
        self, line_id: str, config: KpiConfig | None = None, stations: Sequence[str] | None = None
    ) -> None:
        self.line_id = line_id
        self.config = config or KpiConfig()
        self._lateness = self.config.lateness_ms
        self._stations = list(stations) if stations else None
        self._line = _Line(line_id)
        self._global_watermark: int | None = None

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        """Take one MACHINE-scope window; return the LINE-scope windows that became final. Other
        topics and LINE-scope windows give nothing."""
        if topic != KPIS or record.get("scope") != "MACHINE":
            return []
        machine_id = get_str(record, "scope_id")
        size = get_int(record, "window_size_s") * 1000
        start = get_int(record, "window_start")
        if size <= 0:
            msg = f"KPI line input: window_size_s is {size // 1000}, expected > 0"
            raise KpiError(msg)
        line = self._line
        key = (size, start)
        wm = self._watermark(line)
        out: list[Emit] = []
        if key in line.emitted or (wm is not None and start + size + self._lateness <= wm):
            # Its line window is final already: the machine window is counted as one late event.
            line.late[size] = line.late.get(size, 0) + 1
        else:
            window = line.windows.setdefault(key, {})
            window[machine_id] = dict(record)
            if self._complete(line, key, window):
                out.append(self._emit(line, key))
                line.emitted.add(key)
        end = start + size
        if end > line.progress.get(machine_id, end - 1):
            line.progress[machine_id] = end
        out.extend(self._close(line))
        return out

    def advance(self, event_time_ms: int) -> list[Emit]:
        """Close every line window whose end + allowed lateness <= ``event_time_ms`` (a watermark)."""
        if self._global_watermark is None or event_time_ms > self._global_watermark:
            self._global_watermark = event_time_ms
        out = self._close(self._line)
        return sorted(out, key=lambda e: (e.record["window_end"], e.record["window_size_s"], e.key))

    def _watermark(self, line: _Line) -> int | None:
        # A line merges its machines' streams: like any merged stream, it has progressed as far as
        # its slowest input (the minimum), so a machine whose windows come later is not cut off.
        # A machine that falls silent would hold the line back: ``advance`` moves past it.
        expected = self._stations or list(line.progress)
        known = [line.progress[m] for m in expected if m in line.progress]
        own = min(known) if known and len(known) == len(expected) else None
        marks = [t for t in (own, line.floor, self._global_watermark) if t is not None]
        return max(marks) if marks else None

    def _complete(self, line: _Line, key: _Key, window: dict[str, Record]) -> bool:
        expected = self._stations or line.members.get(key[0])
        return bool(expected) and all(m in window for m in expected or ())

    def _close(self, line: _Line) -> list[Emit]:
        wm = self._watermark(line)
        if wm is None:
            return []
        limit = wm - self._lateness
        due = sorted((start + size, size, start) for size, start in line.windows if start + size <= limit)
        line.emitted = {k for k in line.emitted if k[1] + k[0] > limit}
        return [self._emit(line, (size, start)) for _end, size, start in due]

    def _emit(self, line: _Line, key: _Key) -> Emit:
        size, start = key
        window = line.windows.pop(key)
        late = line.late.get(size, 0) + sum(int(r.get("late_events") or 0) for r in window.values())
        line.late[size] = 0
        line.members[size] = sorted(window)
        figures = line_figures(window, self._stations, late)
        return kpi_emit("LINE", line.line_id, line.line_id, size, start, figures)

    # -- snapshot -----------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The line's windows as a versioned JSON document (see docs/processing.md)."""
        line = self._line
        body: dict[str, Any] = {
            "line_id": line.line_id,
            "watermark": self._watermark(line),
            "progress": line.progress,
            "windows": [[size, start, w] for (size, start), w in line.windows.items()],
            "emitted": sorted([size, start] for size, start in line.emitted),
            "late": {str(size): n for size, n in line.late.items()},
            "members": {str(size): ms for size, ms in line.members.items()},
        }
        return dump_snapshot(SNAPSHOT_FORMAT, SNAPSHOT_VERSION, body)

    def restore(self, data: bytes) -> None:
        """Replace the state with a ``snapshot``; later outputs match the original's."""
        d = load_kpi_snapshot(data, SNAPSHOT_FORMAT, SNAPSHOT_VERSION)
        try:
            line = _Line(
                self.line_id,
                progress={str(k): int(v) for k, v in d["progress"].items()},
                floor=d["watermark"],
                windows={(int(s), int(t)): dict(w) for s, t, w in d["windows"]},
                emitted={(int(s), int(t)) for s, t in d["emitted"]},
                late={int(k): int(v) for k, v in d["late"].items()},
                members={int(k): [str(m) for m in v] for k, v in d["members"].items()},
            )
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{SNAPSHOT_FORMAT} snapshot of {self.line_id!r} is damaged: {type(exc).__name__}: {exc}"
            raise SnapshotError(msg) from None
        self._line = line
        self._global_watermark = None


def _continuous_line(window: dict[str, Record], exit_id: str | None, late: int) -> Figures:
    """A line of continuous machines (no parts, no ideal cycle time: pumps in series): what leaves
    its last machine is the line's output, so the line has that machine's time and rate; without
    a layout, the machine with the lowest OEE stands for the line (the bottleneck)."""
    rec = window[exit_id] if exit_id is not None else min(window.values(), key=lambda r: float(r["oee"]))
    repairs = [float(r["mttr_s"]) for r in window.values() if r.get("mttr_s") is not None]
    return Figures(
        planned_ms=round(float(rec["planned_time_s"]) * 1000),
        run_ms=round(float(rec["run_time_s"]) * 1000),
        total=0,
        good=0,
        ideal_cycle_time_s=0.0,
        mean_cycle_time_s=None,
        failures=sum(int(r.get("failures") or 0) for r in window.values()),
        mttr_s=sum(repairs) / len(repairs) if repairs else None,
        late_events=late,
        rate_ratio=float(rec["performance"]),
    )


def line_figures(window: dict[str, Record], order: list[str] | None, late: int) -> Figures:
    """The figures of one line window from its machines' windows (``order``: the layout, if known)."""
    exit_id = order[-1] if order and order[-1] in window else None
    if all(float(r["ideal_cycle_time_s"]) == 0 and int(r["total_count"]) == 0 for r in window.values()):
        return _continuous_line(window, exit_id, late)
    if exit_id is not None and order:
        # Layout order first, so a tie for the constraint goes to the upstream machine.
        ranked = [m for m in order if m in window] + sorted(m for m in window if m not in order)
    else:
        ranked = sorted(window)
    constraint = window[max(ranked, key=lambda m: float(window[m]["ideal_cycle_time_s"]))]
    if exit_id is not None:
        out = window[exit_id]
        good = int(out["good_count"])
        scrap = sum(int(r["total_count"]) - int(r["good_count"]) for r in window.values())
        total = good + scrap
    else:
        good, total = int(constraint["good_count"]), int(constraint["total_count"])
    repairs = [float(r["mttr_s"]) for r in window.values() if r.get("mttr_s") is not None]
    return Figures(
        planned_ms=round(float(constraint["planned_time_s"]) * 1000),
        run_ms=round(float(constraint["run_time_s"]) * 1000),
        total=total,
        good=good,
        ideal_cycle_time_s=float(constraint["ideal_cycle_time_s"]),
        mean_cycle_time_s=constraint.get("mean_cycle_time_s"),
        failures=sum(int(r.get("failures") or 0) for r in window.values()),
        # The schema carries no repair count per machine: an unweighted mean, exact whenever each
        # machine finished at most one repair in the window (the rule at 1 min and 1 h).
        mttr_s=sum(repairs) / len(repairs) if repairs else None,
        late_events=late,
    )
