"""MACHINE-scope KPI windows from ``factory.production`` and ``factory.state`` (event time).

Each machine keeps the raw events of its still-open windows, sorted by event time, plus the state it
was in before them; a window's figures are computed from that set when the window closes. So events
that arrive out of order within the allowed lateness give exactly the figures of in-order arrival.

>>> kpis = MachineKpis("m1", KpiConfig(window_sizes_s=(60,), allowed_lateness_s=0))
>>> head = {"line_id": "line-1", "machine_id": "m1", "source": "sim", "correlation_id": "x"}
>>> _ = kpis.process_one(STATE, {**head, "event_id": "a", "event_time": 0,
...     "previous": None, "state": "RUNNING", "reason": "start"})
>>> [e.record["availability"] for e in kpis.advance(60_000)]
[1.0]
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, replace
from typing import Any

from processors.base import Emit, Record, dump_snapshot
from processors.kpi.config import KpiConfig, TimeKind
from processors.kpi.record import Figures, get_float, get_int, get_str, kpi_emit, load_kpi_snapshot
from twin.errors import KpiError, SnapshotError
from twin.topics import PRODUCTION, STATE, TELEMETRY

SNAPSHOT_FORMAT = "machine-kpis"
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class _Change:
    time: int
    state: str
    reason: str
    previous: str | None
    event_id: str


@dataclass(frozen=True, slots=True)
class _Part:
    time: int
    good: bool
    cycle_time_s: float
    ideal_cycle_time_s: float
    event_id: str


@dataclass(slots=True)
class _Carry:
    """What the machine was doing just before its oldest buffered event."""

    state: str | None = None
    reason: str = ""
    since: int | None = None
    failure_since: int | None = None
    """Start of the failure in progress (a repair's duration may span many windows)."""
    ideal_cycle_time_s: float | None = None
    ideal_time: int | None = None


@dataclass(slots=True)
class _Timeline:
    """Per state segment (0: the carried one, k: after buffered change k-1): kind, failure, its start."""

    kinds: list[TimeKind]
    failing: list[bool]
    failure_since: list[int | None]


@dataclass(frozen=True, slots=True)
class Rate:
    """A continuous machine's rate (docs/plant.md): ``channel`` against ``nominal`` (same unit).
    A reading counts while the machine runs: above ``running_above`` where that level is on this
    channel, else while its last known state is RUNNING."""

    channel: str
    nominal: float
    running_above: float | None = None


@dataclass(slots=True)
class _Machine:
    machine_id: str
    line_id: str
    watermark: int | None = None
    cursors: dict[int, int] = field(default_factory=dict)
    """Per window size (ms): start of the next window to emit; every window before it is closed."""
    late: dict[int, int] = field(default_factory=dict)
    carry: _Carry = field(default_factory=_Carry)
    change_times: list[int] = field(default_factory=list)
    changes: list[_Change] = field(default_factory=list)
    part_keys: list[tuple[int, str]] = field(default_factory=list)
    parts: list[_Part] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    rates: dict[str, list[float]] = field(default_factory=dict)
    """Continuous machines: per open window ("size:start"), [sum, count] of the running readings."""
    running: bool = False  # the last state seen was RUNNING (for a rate without its own level)


class MachineKpis:
    """One machine's OEE and KPI windows; see docs/kpis.md for every definition.

    ``process_one`` takes plain records of ``factory.production`` and ``factory.state`` and returns
    the windows that closed; ``advance`` closes windows up to a partition-wide watermark, so a silent
    machine still reports.
    """

    def __init__(self, machine_id: str, config: KpiConfig | None = None, rate: Rate | None = None) -> None:
        self.machine_id = machine_id
        self.config = config or KpiConfig()
        self.rate = rate
        self.ignores = frozenset() if rate is not None else frozenset({TELEMETRY})
        """Topics the chain need not hand over (readings matter only to a continuous machine)."""
        self._sizes = self.config.sizes_ms
        self._lateness = self.config.lateness_ms
        self._m = _Machine(machine_id, "")
        self._global_watermark: int | None = None
        # A plant has a handful of (state, reason) pairs: classify each once.
        self._classes: dict[tuple[str | None, str], tuple[TimeKind, bool]] = {}

    # -- input --------------------------------------------------------------------------------------

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        """Take one production or state record (or, for a continuous machine, a reading); return the
        windows that closed. Other topics give nothing; a record missing a field the figures need is
        a ``KpiError``."""
        if topic == TELEMETRY:
            return [] if self.rate is None else self._reading(self.rate, record)
        if topic not in (STATE, PRODUCTION):
            return []
        line_id = get_str(record, "line_id")
        time = get_int(record, "event_time")
        event_id = get_str(record, "event_id")
        event: _Change | _Part
        if topic == STATE:
            previous = record.get("previous")
            event = _Change(
                time,
                get_str(record, "state"),
                str(record.get("reason") or ""),
                previous if isinstance(previous, str) else None,
                event_id,
            )
        else:
            good = record.get("good")
            if not isinstance(good, bool):
                msg = f"KPI input: field 'good' is {good!r}, expected a boolean"
                raise KpiError(msg)
            event = _Part(
                time,
                good,
                get_float(record, "cycle_time_s"),
                get_float(record, "ideal_cycle_time_s"),
                event_id,
            )
        m = self._m
        if event_id in m.ids:
            return []  # a redelivery (at-least-once) of an event already counted
        m.line_id = line_id
        if isinstance(event, _Change) and (m.watermark is None or time >= m.watermark):
            m.running = event.state == "RUNNING"
        self._accept(m, event)
        return self._close(m)

    def _reading(self, rate: Rate, record: Record) -> list[Emit]:
        """A continuous machine's reading: its rate joins the open windows it falls in, if it runs."""
        value = next((c["value"] for c in record["channels"] if c["name"] == rate.channel), None)
        if value is None:
            return []
        m = self._m
        time = get_int(record, "event_time")
        running = value > rate.running_above if rate.running_above is not None else m.running
        if running and m.cursors:
            for size in self._sizes:
                start = time - time % size
                if start >= m.cursors.get(size, start):  # not a window already emitted
                    acc = m.rates.setdefault(f"{size}:{start}", [0.0, 0.0])
                    acc[0] += value
                    acc[1] += 1
        return []

    def advance(self, event_time_ms: int) -> list[Emit]:
        """Close the windows whose end + allowed lateness <= ``event_time_ms`` (a watermark)."""
        if self._global_watermark is None or event_time_ms > self._global_watermark:
            self._global_watermark = event_time_ms
        return sorted(self._close(self._m), key=_emit_order)

    # -- state --------------------------------------------------------------------------------------

    def _watermark(self, m: _Machine) -> int | None:
        g = self._global_watermark
        if m.watermark is None:
            return g
        return m.watermark if g is None else max(m.watermark, g)

    def _first_open(self, size: int, watermark: int | None, time: int) -> int:
        """Start of the window of ``time``, or of the first window still open at ``watermark``."""
        start = time - time % size
        if watermark is None:
            return start
        # The first window with start + size + lateness > watermark.
        limit = watermark - self._lateness - size
        return max(start, limit - limit % size + size)

    def _accept(self, m: _Machine, event: _Change | _Part) -> None:
        time = event.time
        wm = self._watermark(m)
        for size in self._sizes:
            cursor = m.cursors.get(size)
            if cursor is None:
                m.cursors[size] = self._first_open(size, wm, time)
                m.late.setdefault(size, 0)
            elif time < cursor:
                start = time - time % size
                if wm is None or start + size + self._lateness > wm:
                    m.cursors[size] = start  # no window emitted yet: an earlier event opens an earlier one
            if time < m.cursors[size]:
                m.late[size] += 1
        if m.watermark is None or time > m.watermark:
            m.watermark = time
        if time < min(m.cursors.values()):
            self._fold_late(m, event)
        elif isinstance(event, _Change):
            i = bisect_right(m.change_times, time)
            m.change_times.insert(i, time)
            m.changes.insert(i, event)
            m.ids.add(event.event_id)
            if (i > 0 and m.change_times[i - 1] == time) or (
                i + 1 < len(m.change_times) and m.change_times[i + 1] == time
            ):
                lo = bisect_left(m.change_times, time)
                hi = bisect_right(m.change_times, time)
                m.changes[lo:hi] = _chain(m.changes[lo:hi])
        else:
            key = (time, event.event_id)
            i = bisect_right(m.part_keys, key)
            m.part_keys.insert(i, key)
            m.parts.insert(i, event)
            m.ids.add(event.event_id)

    def _fold_late(self, m: _Machine, event: _Change | _Part) -> None:
        """An event older than every open window: not counted, but a state it reports still holds."""
        c = m.carry
        if isinstance(event, _Part):
            if c.ideal_time is None or event.time >= c.ideal_time:
                c.ideal_cycle_time_s, c.ideal_time = event.ideal_cycle_time_s, event.time
            return
        if c.since is not None and event.time < c.since:
            return  # superseded by a later change we already have
        was_failing = self._classify(c.state, c.reason)[1]
        failing = self._classify(event.state, event.reason)[1]
        c.failure_since = (c.failure_since if was_failing else event.time) if failing else None
        c.state, c.reason, c.since = event.state, event.reason, event.time

    # -- windows ------------------------------------------------------------------------------------

    def _close(self, m: _Machine) -> list[Emit]:
        wm = self._watermark(m)
        if wm is None or not m.cursors:
            return []
        due: list[tuple[int, int, int]] = []
        for size, cursor in m.cursors.items():
            start = cursor
            while start + size + self._lateness <= wm:
                due.append((start + size, size, start))
                start += size
        if not due:
            return []
        due.sort()
        timeline = self._timeline(m)
        out: list[Emit] = []
        for _end, size, start in due:
            figures = self._figures(m, timeline, size, start, m.late[size])
            if self.rate is not None:
                total, n = m.rates.pop(f"{size}:{start}", (0.0, 0.0))
                figures = replace(figures, rate_ratio=total / n / self.rate.nominal if n else 0.0)
            m.late[size] = 0  # pending late events go into the first window emitted after them
            m.cursors[size] = start + size
            out.append(kpi_emit("MACHINE", m.machine_id, m.line_id, size, start, figures))
        self._compact(m, timeline)
        return out

    def _classify(self, state: str | None, reason: str) -> tuple[TimeKind, bool]:
        found = self._classes.get((state, reason))
        if found is None:
            found = self._classes[state, reason] = self.config.classify(state, reason)
        return found

    def _timeline(self, m: _Machine) -> _Timeline:
        classify = self._classify
        kind, failing = classify(m.carry.state, m.carry.reason)
        since = m.carry.failure_since if failing else None
        kinds, fails, sinces = [kind], [failing], [since]
        for ch in m.changes:
            kind, now_failing = classify(ch.state, ch.reason)
            since = (since if failing else ch.time) if now_failing else None
            failing = now_failing
            kinds.append(kind)
            fails.append(failing)
            sinces.append(since)
        return _Timeline(kinds, fails, sinces)

    def _figures(self, m: _Machine, tl: _Timeline, size: int, start: int, late: int) -> Figures:
        end = start + size
        spent = [0, 0, 0, 0]  # ms per TimeKind
        failures = 0
        repairs: list[int] = []
        times = m.change_times
        k = bisect_left(times, start)
        at = start
        while k < len(times) and times[k] < end:
            t = times[k]
            spent[tl.kinds[k]] += t - at
            if tl.failing[k + 1] and not tl.failing[k]:
                failures += 1
            elif tl.failing[k] and not tl.failing[k + 1]:
                began = tl.failure_since[k]
                repairs.append(t - (t if began is None else began))
            at = t
            k += 1
        spent[tl.kinds[k]] += end - at
        planned = size - spent[TimeKind.UNKNOWN] - spent[TimeKind.PLANNED_STOP]
        run = planned - spent[TimeKind.UNPLANNED_STOP]

        lo = bisect_left(m.part_keys, (start, ""))
        hi = bisect_left(m.part_keys, (end, ""))
        parts = m.parts[lo:hi]
        total = len(parts)
        good = sum(1 for p in parts if p.good)
        if total:
            # fsum: exact, so the arrival order of parts cannot change the last digit.
            ideal = math.fsum(p.ideal_cycle_time_s for p in parts) / total
            mean_cycle: float | None = math.fsum(p.cycle_time_s for p in parts) / total
        else:
            # No parts: the machine's latest known ideal cycle time, so a reader still sees it.
            ideal = m.parts[hi - 1].ideal_cycle_time_s if hi else (m.carry.ideal_cycle_time_s or 0.0)
            mean_cycle = None
        return Figures(
            planned_ms=planned,
            run_ms=run,
            total=total,
            good=good,
            ideal_cycle_time_s=ideal,
            mean_cycle_time_s=mean_cycle,
            failures=failures,
            mttr_s=sum(repairs) / len(repairs) / 1000 if repairs else None,
            late_events=late,
        )

    def _compact(self, m: _Machine, tl: _Timeline) -> None:
        """Fold what precedes every open window into the carried state, and forget it."""
        horizon = min(m.cursors.values())
        n = bisect_left(m.change_times, horizon)
        if n:
            last = m.changes[n - 1]
            m.carry.state, m.carry.reason, m.carry.since = last.state, last.reason, last.time
            m.carry.failure_since = tl.failure_since[n]
            for ch in m.changes[:n]:
                m.ids.discard(ch.event_id)
            del m.change_times[:n], m.changes[:n]
        n = bisect_left(m.part_keys, (horizon, ""))
        if n:
            last_part = m.parts[n - 1]
            m.carry.ideal_cycle_time_s, m.carry.ideal_time = last_part.ideal_cycle_time_s, last_part.time
            for p in m.parts[:n]:
                m.ids.discard(p.event_id)
            del m.part_keys[:n], m.parts[:n]

    # -- snapshot -----------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The machine's windows as a versioned JSON document (see docs/processing.md)."""
        m = self._m
        c = m.carry
        body: dict[str, Any] = {
            "machine_id": m.machine_id,
            "line_id": m.line_id,
            "watermark": self._watermark(m),
            "cursors": {str(size): start for size, start in m.cursors.items()},
            "late": {str(size): n for size, n in m.late.items()},
            "carry": [c.state, c.reason, c.since, c.failure_since, c.ideal_cycle_time_s, c.ideal_time],
            "changes": [[x.time, x.state, x.reason, x.previous, x.event_id] for x in m.changes],
            "parts": [[p.time, p.good, p.cycle_time_s, p.ideal_cycle_time_s, p.event_id] for p in m.parts],
        }
        if self.rate is not None:  # only continuous machines carry these (older snapshots lack them)
            body["rates"] = m.rates
            body["running"] = m.running
        return dump_snapshot(SNAPSHOT_FORMAT, SNAPSHOT_VERSION, body)

    def restore(self, data: bytes) -> None:
        """Replace the state with a ``snapshot``; later outputs match the original's."""
        d = load_kpi_snapshot(data, SNAPSHOT_FORMAT, SNAPSHOT_VERSION)
        try:
            m = _Machine(self.machine_id, str(d["line_id"]), watermark=d["watermark"])
            cursors = {int(k): int(v) for k, v in d["cursors"].items()}
            late = {int(k): int(v) for k, v in d["late"].items()}
            m.carry = _Carry(*d["carry"])
            m.changes = [_Change(*x) for x in d["changes"]]
            m.change_times = [x.time for x in m.changes]
            m.parts = [_Part(*p) for p in d["parts"]]
            m.part_keys = [(p.time, p.event_id) for p in m.parts]
            m.rates = {str(k): [float(v[0]), float(v[1])] for k, v in d.get("rates", {}).items()}
            m.running = bool(d.get("running", False))
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{SNAPSHOT_FORMAT} snapshot of {self.machine_id!r} is damaged: {type(exc).__name__}: {exc}"
            raise SnapshotError(msg) from None
        m.ids = {x.event_id for x in m.changes} | {p.event_id for p in m.parts}
        if cursors:
            # A window size configured since the snapshot starts at the first window still open.
            horizon = min(cursors.values())
            for size in self._sizes:
                m.cursors[size] = cursors.get(size, self._first_open(size, m.watermark, horizon))
                m.late[size] = late.get(size, 0)
        self._m = m
        self._global_watermark = None


def _chain(group: list[_Change]) -> list[_Change]:
    """Changes with the same time, in the order their ``previous`` fields link them (then by name),
    so the state that holds after that millisecond does not depend on arrival order."""
    rest = sorted(group, key=lambda c: (c.state, c.reason, c.event_id))
    ordered: list[_Change] = []
    while rest:
        pick = next((c for c in rest if not any(o is not c and o.state == c.previous for o in rest)), rest[0])
        ordered.append(pick)
        rest.remove(pick)
    return ordered


def _emit_order(e: Emit) -> tuple[int, int, str]:
    r = e.record
    return (int(r["window_end"]), int(r["window_size_s"]), str(r["scope_id"]))
