"""Where REST reads recent alarms and KPIs from.

``MemoryHistory`` answers from the gateway's own in-memory view (what it has seen since it started).
``CassandraHistory`` answers from the Cassandra sink's tables (``sinks/cassandra``, docs/history.md),
so the answer covers what the line stored before the gateway started. Either plugs in through
``create_app(..., history=...)`` and nothing else changes.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from schemas import load_schema
from twin.errors import CassandraUnreachableError, HistoryUnavailableError, MigrationError, one_line
from xr_gateway.hub import ACTIVE_STATUSES, Hub

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session

    from sinks.cassandra.queries import History
    from twin.settings import Settings

log = logging.getLogger(__name__)


class HistoryStore(Protocol):
    def recent_alarms(
        self, *, machine_id: str | None, line_id: str | None, open_only: bool, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first."""
        ...

    def recent_kpis(
        self, *, line_id: str | None, scope_id: str | None, window_size_s: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first."""
        ...

    def report_periods(self, *, line_id: str, kind: str, limit: int) -> list[dict[str, Any]]:
        """A line's complete analytics report periods (``twin spark report``), newest first."""
        ...

    def report(self, *, report: str, line_id: str, period: str) -> list[dict[str, Any]]:
        """One stored report's rows, flattened: scope, item, kind, then its labels and metrics."""
        ...


class MemoryHistory:
    """The last ``history_max`` alarm events and KPI windows the gateway saw."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def recent_alarms(
        self, *, machine_id: str | None, line_id: str | None, open_only: bool, limit: int
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for record in reversed(self.hub.recent_alarms):
            alarm_id = str(record["alarm_id"])
            if open_only and (alarm_id in seen or record.get("status") not in ACTIVE_STATUSES):
                seen.add(alarm_id)  # an alarm's newest event decides whether it is active
                continue
            seen.add(alarm_id)
            if machine_id is not None and record.get("machine_id") != machine_id:
                continue
            if line_id is not None and record.get("line_id") != line_id:
                continue
            out.append(record)
            if len(out) >= limit:
                break
        return out

    def recent_kpis(
        self, *, line_id: str | None, scope_id: str | None, window_size_s: int | None, limit: int
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for record in reversed(self.hub.recent_kpis):
            if line_id is not None and record.get("line_id") != line_id:
                continue
            if scope_id is not None and record.get("scope_id") != scope_id:
                continue
            if window_size_s is not None and record.get("window_size_s") != window_size_s:
                continue
            out.append(record)
            if len(out) >= limit:
                break
        return out

    def report_periods(self, *, line_id: str, kind: str, limit: int) -> list[dict[str, Any]]:
        raise HistoryUnavailableError(_NO_REPORTS)

    def report(self, *, report: str, line_id: str, period: str) -> list[dict[str, Any]]:
        raise HistoryUnavailableError(_NO_REPORTS)


_NO_REPORTS = (
    "analytics reports live in Cassandra: start the gateway with `--history cassandra` "
    "and run `twin spark report`"
)

# -- Cassandra -------------------------------------------------------------------------------------


DAY_MS = 86_400_000
DEFAULT_DAYS = 7  # how far back a request looks (alarms by start time, KPI windows by start)
MAX_ROWS = 10_000  # most rows one table read may return, a backstop against an alarm storm
_AHEAD_MS = DAY_MS  # KPI windows up to a day ahead of the wall clock (a simulation running fast)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)

CLEARED_STATUSES = ("CLEARED_UNACK", "CLEARED_ACK")
# "Open" as MemoryHistory and the REST docs mean it: the latest event is not CLEARED_ACK.

# The fields of twin.alarms and twin.kpis records, in the Avro schemas' order, so a record read back
# from Cassandra is the record the feed decodes.
ALARM_FIELDS = tuple(load_schema("alarm").field_names)
_ALARM_TIMES = ("event_time", "start_time", "end_time", "ack_time", "clear_time")
KPI_FIELDS = tuple(load_schema("kpi_window").field_names)
_KPI_TIMES = ("event_time", "window_start", "window_end")
_KPI_COLUMNS = {"window_size_s": "window_s"}  # record field -> kpi_windows column, where they differ


def epoch_ms(value: Any) -> int | None:
    """A timestamp column as the Avro wire form has it: epoch milliseconds (naive means UTC)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return int(value)
    when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return ((when - _EPOCH) // _ONE_US + 500) // 1000  # the driver's datetimes are whole milliseconds


def alarm_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of ``alarms_by_machine`` / ``alarms_by_state`` (as ``History`` returns it) as a
    twin.alarms record: the alarm's latest event."""
    out = {name: row.get(name) for name in ALARM_FIELDS}
    for name in _ALARM_TIMES:
        out[name] = epoch_ms(out[name])
    out["details"] = dict(out["details"] or {})  # Cassandra returns an empty map as null
    out["version"] = out.get("version") or 0  # rows written before lifecycle versions: null
    return out


def lifecycle(record: Mapping[str, Any]) -> tuple[int, int]:
    """Which of two records of one alarm is newer: the higher lifecycle version, whatever clocks
    stamped them (records without a version: by event time)."""
    return (record.get("version") or 0, record["event_time"])


def kpi_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of ``kpi_windows`` as a twin.kpis record (the window's latest emission)."""
    out = {name: row.get(_KPI_COLUMNS.get(name, name)) for name in KPI_FIELDS}
    for name in _KPI_TIMES:
        out[name] = epoch_ms(out[name])
    return out


def report_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``report_rows`` row as one flat record: keys, then labels, then metrics."""
    out: dict[str, Any] = {k: row[k] for k in ("scope", "item", "kind", "period_start", "period_end")}
    out.update(row.get("labels") or {})
    out.update(row.get("metrics") or {})
    return out


def alarm_order(record: Mapping[str, Any]) -> tuple[int, int, str]:
    """Sort key, newest first when reversed: the alarm's latest event, as it arrives on the feed."""
    return (record["event_time"], record["start_time"], record["alarm_id"])


def kpi_order(record: Mapping[str, Any]) -> tuple[int, int, bool, str]:
    """Sort key, newest first when reversed: the order the KPI processors emit windows in (by window
    end, then size, then scope id; a line's window after its machines')."""
    return (record["window_end"], record["window_size_s"], record["scope"] == "LINE", record["scope_id"])


def _matches(record: Mapping[str, Any], machine_id: str | None, line_id: str | None) -> bool:
    return (machine_id is None or record.get("machine_id") == machine_id) and (
        line_id is None or record.get("line_id") == line_id
    )


@functools.cache
def _driver_errors() -> tuple[type[BaseException], ...]:
    """What the driver raises when Cassandra cannot answer (imported lazily: a memory-history
    gateway never loads the driver)."""
    from cassandra import DriverException
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException
    from cassandra.protocol import ErrorMessage

    return (DriverException, NoHostAvailable, ConnectionException, ErrorMessage, OSError)


def _reason(exc: BaseException) -> str:
    """One short line: the exception's type and message (NoHostAvailable: its first host's error,
    which says more than "Unable to connect to any servers")."""
    errors = getattr(exc, "errors", None)  # NoHostAvailable(message, {host: error})
    if isinstance(errors, dict):
        detail = one_line(next(iter(errors.values()))) if errors else " ".join(str(exc.args[0]).split())
        return f"{type(exc).__name__}: {detail}"[:300]
    return one_line(exc, 300)


class CassandraHistory:
    """REST history read from the Cassandra sink's tables (``sinks.cassandra.queries.History``).

    Records have the same fields as those ``MemoryHistory`` returns (times in epoch ms, ids as
    strings), so a client cannot tell the stores apart, with two differences that come from the
    tables: an alarm is one record (its latest event, as ``alarms_by_*`` keep it), not one record per
    lifecycle event; and a KPI window emitted twice is one record (the newer emission).

    Every request is bounded. It reads alarms that started in the last ``days`` days, plus every alarm
    that is still active (``alarms_by_state``'s ACTIVE partitions hold only those), and KPI windows that
    started in ``[now - days, now + 1 day)``. It reads at most ``max_rows`` rows per table read. Without a
    machine or scope, it fans out over ``alarms_by_state`` (alarms) or over the lines and machines
    ``machines_by_line`` knows (KPIs, for each size in ``window_sizes_s``). The methods block, because the
    REST routes run in FastAPI's threadpool. A Cassandra failure raises :class:`HistoryUnavailableError`.
    """

    def __init__(
        self,
        session: Session,
        keyspace: str,
        *,
        days: int = DEFAULT_DAYS,
        window_sizes_s: Sequence[int] = (60, 3600),
        max_rows: int = MAX_ROWS,
        clock: Callable[[], float] = time.time,
        cluster: Cluster | None = None,
    ) -> None:
        from sinks.cassandra.queries import History

        if days < 1 or max_rows < 1:
            msg = f"days ({days}) and max_rows ({max_rows}) must be at least 1"
            raise ValueError(msg)
        self.history: History = History(session, keyspace)
        self.keyspace = self.history.keyspace
        self.days = days
        self.window_sizes_s = tuple(dict.fromkeys(window_sizes_s))
        self.max_rows = max_rows
        self.clock = clock
        self._cluster = cluster  # owned (shut down by close) when connect() made it
        self._failing = False

    @classmethod
    def connect(
        cls,
        settings: Settings,
        *,
        keyspace: str | None = None,
        days: int = DEFAULT_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> CassandraHistory:
        """Connect as the sinks do (``TWIN_CASSANDRA__*``). The keyspace must be migrated. Raises
        :class:`HistoryUnavailableError` when Cassandra is unreachable or the keyspace is not ready."""
        from sinks.cassandra.connection import connect
        from sinks.cassandra.schema import Migrator, check_keyspace_name

        ks = check_keyspace_name(keyspace or settings.cassandra.keyspace)
        flag = "" if ks == settings.cassandra.keyspace else f" --keyspace {ks}"
        try:
            cluster, session = connect(settings)
        except CassandraUnreachableError as exc:
            raise HistoryUnavailableError(str(exc)) from exc
        try:
            migrator = Migrator(session, ks)
            if not migrator.keyspace_exists():
                msg = f"keyspace {ks} does not exist: run `twin db migrate{flag}` and `twin sink cassandra`"
                raise HistoryUnavailableError(msg)
            pending = ", ".join(m.label for m in migrator.pending())
            if pending:
                msg = f"keyspace {ks} is not migrated ({pending} pending): run `twin db migrate{flag}`"
                raise HistoryUnavailableError(msg)
            return cls(
                session,
                ks,
                days=days,
                window_sizes_s=settings.processors.kpi_windows_s,
                clock=clock,
                cluster=cluster,
            )
        except HistoryUnavailableError:
            cluster.shutdown()
            raise
        except MigrationError as exc:
            cluster.shutdown()
            raise HistoryUnavailableError(str(exc)) from exc
        except _driver_errors() as exc:
            cluster.shutdown()
            msg = f"cannot read keyspace {ks} from Cassandra: {_reason(exc)}"
            raise HistoryUnavailableError(msg) from exc

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = None

    # -- HistoryStore ----------------------------------------------------------------------------
    def recent_alarms(
        self, *, machine_id: str | None, line_id: str | None, open_only: bool, limit: int
    ) -> list[dict[str, Any]]:
        since = self._now_ms() - self.days * DAY_MS
        latest: dict[str, dict[str, Any]] = {}
        with self._answering():
            for row in self._alarm_rows(machine_id, line_id, open_only, since):
                record = alarm_record(row)
                if not _matches(record, machine_id, line_id):
                    continue
                # An alarm is in one row per table; while the sink moves it between status
                # partitions, a read may meet it twice: the later lifecycle version wins.
                seen = latest.get(record["alarm_id"])
                if seen is None or lifecycle(record) > lifecycle(seen):
                    latest[record["alarm_id"]] = record
        return sorted(latest.values(), key=alarm_order, reverse=True)[:limit]

    def recent_kpis(
        self, *, line_id: str | None, scope_id: str | None, window_size_s: int | None, limit: int
    ) -> list[dict[str, Any]]:
        now = self._now_ms()
        since, until = now - self.days * DAY_MS, now + _AHEAD_MS
        sizes = self.window_sizes_s if window_size_s is None else (window_size_s,)
        with self._answering():
            sources = [
                self._kpi_windows(scope, sid, size, since, until, limit)
                for scope, sid in self._kpi_scopes(line_id, scope_id)
                for size in sizes
            ]
            # Each source is one (scope, id, size) partition series, newest first: merged lazily,
            # so a request reads about ``limit`` rows, not ``days`` of them.
            merged = heapq.merge(*sources, key=kpi_order, reverse=True)
            wanted = (r for r in merged if line_id is None or r["line_id"] == line_id)
            return list(itertools.islice(wanted, limit))

    def report_periods(self, *, line_id: str, kind: str, limit: int) -> list[dict[str, Any]]:
        with self._answering():
            rows = self.history.report_periods(line_id, kind, limit=limit)
        return [{k: v for k, v in r.items() if k not in ("run_id", "source")} for r in rows]

    def report(self, *, report: str, line_id: str, period: str) -> list[dict[str, Any]]:
        with self._answering():
            rows = self.history.report_rows(report, line_id, period)
        return [report_record(r) for r in rows]

    # -- reads -----------------------------------------------------------------------------------
    def _alarm_rows(
        self, machine_id: str | None, line_id: str | None, open_only: bool, since: int
    ) -> Iterator[Mapping[str, Any]]:
        h, cap = self.history, self.max_rows
        if open_only:
            # Active now: the ACTIVE partitions, which hold only those, read whole (an alarm active
            # for weeks is still there).
            yield from h.alarms_by_status(ACTIVE_STATUSES, line_id=line_id, limit=cap)
            return
        if machine_id is None and line_id is None:
            yield from h.alarms_by_status(ACTIVE_STATUSES, limit=cap)
            yield from h.alarms_by_status(CLEARED_STATUSES, since_ms=since, limit=cap)
            return
        machines = [machine_id] if machine_id is not None else h.machines_of_line(str(line_id))
        yield from h.alarms_of_machines(machines, since_ms=since, limit=cap)
        # Alarms still active that started before the look-back (a machine down for weeks).
        yield from h.alarms_by_status(ACTIVE_STATUSES, line_id=line_id, until_ms=since, limit=cap)

    def _kpi_scopes(self, line_id: str | None, scope_id: str | None) -> list[tuple[str, str]]:
        if scope_id is not None:
            # A scope id is a machine id or a line id: both partitions (an empty one is cheap).
            return [("LINE", scope_id), ("MACHINE", scope_id)]
        lines = [line_id] if line_id is not None else self.history.lines()
        scopes: list[tuple[str, str]] = []
        for line in lines:
            scopes.append(("LINE", line))
            scopes.extend(("MACHINE", m) for m in self.history.machines_of_line(line))
        return list(dict.fromkeys(scopes))

    def _kpi_windows(
        self, scope: str, scope_id: str, size: int, since: int, until: int, limit: int
    ) -> Iterator[dict[str, Any]]:
        rows = self.history.kpis(scope, [scope_id], size, since_ms=since, until_ms=until, limit=limit)
        return (kpi_record(r) for r in rows)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        try:
            yield
        except _driver_errors() as exc:
            if not self._failing:
                log.warning("history: Cassandra cannot answer: %s", _reason(exc))
            self._failing = True
            msg = f"history unavailable: Cassandra cannot answer ({_reason(exc)})"
            raise HistoryUnavailableError(msg) from exc
        if self._failing:
            log.info("history: Cassandra answers again")
        self._failing = False
