"""Reading history back: telemetry, KPI windows, alarms (and the other tables), newest first.

Every read is a slice of a partition the table was shaped for; nothing scans. Time-bucketed tables
are walked day by day from the newest bucket down, and stop as soon as ``limit`` rows came back.
Rows are plain dicts: times as UTC datetimes, ids as strings.

>>> history = History(session, "factory_twin")                                   # doctest: +SKIP
>>> rows = history.telemetry(["cnc-1"], since_ms=t0, until_ms=t1, limit=100)     # doctest: +SKIP
"""

from __future__ import annotations

import heapq
import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sinks.cassandra.rows import ALARM_STATUSES, MAX_EVENT_TIME_MS, day_of
from sinks.cassandra.schema import check_keyspace_name

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from cassandra.query import PreparedStatement

Row = dict[str, Any]
_PAGE = 1000
_END_OF_TIME_MS = MAX_EVENT_TIME_MS + 1  # an open-ended range ends after the last time a table holds
_EVENT_TABLES = ("telemetry", "parts", "machine_states", "anomalies")
_ALARM_FIELDS = (
    "alarm_id, machine_id, line_id, alarm_type, rule_id, severity, status, start_time, end_time, ack_time, "
    "acked_by, clear_time, cleared_by, value, peak_value, clear_value, message, details, event_id, "
    "event_time, source, correlation_id, version"
)


def _plain(value: Any) -> Any:
    out = value
    if isinstance(value, datetime):
        # The driver returns naive UTC datetimes; make that explicit for printing and JSON.
        out = value.replace(tzinfo=UTC)
    elif isinstance(value, uuid.UUID):
        out = str(value)
    elif isinstance(value, date):
        out = value.isoformat()
    elif hasattr(value, "_asdict"):  # a user-defined type
        out = {k: _plain(v) for k, v in value._asdict().items()}
    elif isinstance(value, list | tuple):
        out = [_plain(v) for v in value]
    elif isinstance(value, Mapping):  # a dict, or the driver's map type (frozen<map<...>>)
        out = {k: _plain(v) for k, v in value.items()}
    return out


def _row(row: Any) -> Row:
    return {k: _plain(v) for k, v in row._asdict().items()}


def _days_newest_first(since_ms: int, until_ms: int) -> range:
    """The day buckets (``day_of``) that ``[since_ms, until_ms)`` touches, the newest first."""
    return range(day_of(max(until_ms - 1, 0)), day_of(since_ms) - 1, -1)


def _newest_first(sources: Iterable[Iterator[Row]], key: str, limit: int) -> Iterator[Row]:
    merged = heapq.merge(*sources, key=lambda r: r[key], reverse=True)
    return itertools.islice(merged, limit)


class History:
    """Queries over one keyspace; statements are prepared once per instance."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self.session = session
        self.keyspace = check_keyspace_name(keyspace)
        self._prepared: dict[str, PreparedStatement] = {}

    def _prepare(self, cql: str) -> PreparedStatement:
        statement = self._prepared.get(cql)
        if statement is None:
            statement = self.session.prepare(cql.format(ks=self.keyspace))
            statement.fetch_size = _PAGE
            self._prepared[cql] = statement
        return statement

    def _run(self, cql: str, params: tuple[Any, ...]) -> Iterator[Row]:
        for row in self.session.execute(self._prepare(cql), params):
            yield _row(row)

    # -- machines and lines ----------------------------------------------------------------------
    def machines_of_line(self, line_id: str) -> list[str]:
        rows = self._run("SELECT machine_id FROM {ks}.machines_by_line WHERE line_id = ?", (line_id,))
        return [r["machine_id"] for r in rows]

    def lines(self) -> list[str]:
        """Every line ``machines_by_line`` knows. It reads only the table's partition keys (one per line),
        which is cheap because the table holds one partition per line."""
        return [r["line_id"] for r in self._run("SELECT DISTINCT line_id FROM {ks}.machines_by_line", ())]

    # -- time-bucketed event history -------------------------------------------------------------
    def events(
        self, table: str, machines: Sequence[str], *, since_ms: int, until_ms: int, limit: int
    ) -> Iterator[Row]:
        """Rows of ``table`` (telemetry, parts, machine_states, anomalies) for ``machines`` with
        ``since_ms <= event_time < until_ms``, newest first across all of them."""
        if table not in _EVENT_TABLES:
            msg = f"not an event table: {table!r}"
            raise ValueError(msg)
        cql = (
            f"SELECT * FROM {{ks}}.{table} WHERE machine_id = ? AND day = ? "  # noqa: S608 - constants only
            "AND event_time >= ? AND event_time < ? LIMIT ?"
        )

        def one(machine: str) -> Iterator[Row]:
            for day in _days_newest_first(since_ms, until_ms):
                yield from self._run(cql, (machine, day, since_ms, until_ms, limit))

        return _newest_first((one(m) for m in machines), "event_time", limit)

    def telemetry(
        self, machines: Sequence[str], *, since_ms: int, until_ms: int, limit: int
    ) -> Iterator[Row]:
        return self.events("telemetry", machines, since_ms=since_ms, until_ms=until_ms, limit=limit)

    # -- KPI windows -----------------------------------------------------------------------------
    def kpis(
        self,
        scope: str,
        scope_ids: Sequence[str],
        window_s: int,
        *,
        since_ms: int,
        until_ms: int,
        limit: int,
    ) -> Iterator[Row]:
        """Windows of ``scope`` (MACHINE or LINE) starting in ``[since_ms, until_ms)``, newest first."""
        cql = (
            "SELECT * FROM {ks}.kpi_windows WHERE scope = ? AND scope_id = ? AND window_s = ? AND day = ? "
            "AND window_start >= ? AND window_start < ? LIMIT ?"
        )

        def one(scope_id: str) -> Iterator[Row]:
            for day in _days_newest_first(since_ms, until_ms):
                yield from self._run(cql, (scope, scope_id, window_s, day, since_ms, until_ms, limit))

        return _newest_first((one(s) for s in scope_ids), "window_start", limit)

    # -- alarms ----------------------------------------------------------------------------------
    def _alarms(self, table: str, key: tuple[str, str], since_ms: int, until_ms: int | None) -> Iterator[Row]:
        """The alarms of one partition of ``table`` (``key``: column, value) that started in
        ``[since_ms, until_ms)``, newest first."""
        column, value = key
        cql = (
            f"SELECT {_ALARM_FIELDS} FROM {{ks}}.{table} WHERE {column} = ? "  # noqa: S608 - constants only
            "AND start_time >= ? AND start_time < ?"
        )
        until = until_ms if until_ms is not None else _END_OF_TIME_MS
        return self._run(cql, (value, since_ms, until))

    def alarms_of_machines(
        self,
        machines: Sequence[str],
        *,
        statuses: Sequence[str] = ALARM_STATUSES,
        since_ms: int = 0,
        until_ms: int | None = None,
        limit: int,
    ) -> Iterator[Row]:
        """The latest state of each alarm of ``machines`` that started in the range, newest first."""
        wanted = set(statuses)

        def one(machine: str) -> Iterator[Row]:
            rows = self._alarms("alarms_by_machine", ("machine_id", machine), since_ms, until_ms)
            return (r for r in rows if r["status"] in wanted)

        return _newest_first((one(m) for m in machines), "start_time", limit)

    def alarms_by_status(
        self,
        statuses: Sequence[str],
        *,
        line_id: str | None = None,
        since_ms: int = 0,
        until_ms: int | None = None,
        limit: int,
    ) -> Iterator[Row]:
        """Alarms now in ``statuses`` (one partition read each), optionally of one line, newest first."""

        def one(status: str) -> Iterator[Row]:
            rows = self._alarms("alarms_by_state", ("status", status), since_ms, until_ms)
            return (r for r in rows if line_id is None or r["line_id"] == line_id)

        return _newest_first((one(s) for s in statuses), "start_time", limit)

    def alarm_events(self, alarm_id: str) -> list[Row]:
        """Every lifecycle event of one alarm in lifecycle order (by version; events written before
        versions existed by time), whatever clocks stamped them."""
        cql = "SELECT * FROM {ks}.alarm_events WHERE alarm_id = ?"
        rows = list(self._run(cql, (uuid.UUID(alarm_id),)))
        return sorted(rows, key=lambda r: (r.get("version") or 0, r["event_time"]))

    # -- scheduling ------------------------------------------------------------------------------
    def schedule_plans(self, line_id: str, *, limit: int) -> list[Row]:
        return list(
            self._run("SELECT * FROM {ks}.schedule_plans WHERE line_id = ? LIMIT ?", (line_id, limit))
        )

    def schedule_requests(self, line_id: str, *, limit: int) -> list[Row]:
        cql = "SELECT * FROM {ks}.schedule_requests WHERE line_id = ? LIMIT ?"
        return list(self._run(cql, (line_id, limit)))

    # -- analytics reports (jobs/spark, docs/analytics.md) -----------------------------------------
    def report_periods(self, line_id: str, kind: str, *, limit: int, complete_only: bool = True) -> list[Row]:
        """A line's report periods of one kind (``day`` or ``shift``), newest first; by default only
        those whose run finished (a run that died half-way leaves its periods ``running``)."""
        cql = "SELECT * FROM {ks}.report_periods WHERE line_id = ? AND kind = ?"
        rows = (r for r in self._run(cql, (line_id, kind)) if not complete_only or r["status"] == "complete")
        return list(itertools.islice(rows, limit))

    def report_rows(self, report: str, line_id: str, period: str) -> list[Row]:
        """One report of one line and period: its rows by scope and item."""
        cql = "SELECT * FROM {ks}.report_rows WHERE report = ? AND line_id = ? AND period = ?"
        return list(self._run(cql, (report, line_id, period)))
