"""The Cassandra history sink: prepared, idempotent writes with a bounded number in flight.

>>> sink = CassandraSink(settings)                       # doctest: +SKIP
>>> sink.setup(); sink.add(record); sink.flush()         # doctest: +SKIP
FlushResult(written=1, retries=0, rejected=[])

One ``flush`` is one pass over the buffered records: it never sleeps. Timeouts, unavailable replicas
and lost connections keep the affected records and raise ``BackpressureError`` (the runner waits
and calls again; the driver reconnects in the meantime). A value Cassandra refuses, or one no column can
hold, comes back in :attr:`FlushResult.rejected` with the reason while the rest is written.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from sinks.base import FlushResult, Rejected, SinkRecord
from sinks.cassandra.connection import connect
from sinks.cassandra.failures import RETRYABLE, Failure, classify
from sinks.cassandra.rows import MACHINE_TOPICS, MAPPERS, STATEMENTS, day_of, machine_of_line
from sinks.cassandra.schema import Migrator, check_keyspace_name
from twin.errors import BackpressureError, CassandraUnreachableError, MigrationError, SinkError, one_line
from twin.settings import Settings
from twin.topics import CATALOG

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session
    from cassandra.query import PreparedStatement

log = logging.getLogger(__name__)

WRITE_ERRORS = Counter(
    "twin_sink_cassandra_write_errors_total",
    "Cassandra writes that failed, by what the sink did about it (retry kinds, rejected, fatal)",
    ["kind"],
)

# Exceptions a mapper raises for a value no column can hold (MappingError is a ValueError).
_MAPPING_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


@dataclass(slots=True)
class _Pass:
    """The statements of one flush pass and which record each belongs to."""

    statements: list[tuple[PreparedStatement, tuple[Any, ...]]] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # statement index -> record index
    machine_writes: dict[int, tuple[str, str, int]] = field(default_factory=dict)  # -> machines_by_line key
    rejected: dict[int, str] = field(default_factory=dict)  # record index -> reason


@dataclass
class _Tally:
    """Outcomes of one pass's statements, settled one by one."""

    work: _Pass
    known_machines: set[tuple[str, str, int]]
    written: int = 0
    retry: set[int] = field(default_factory=set)
    reason: str = ""
    fatal: BaseException | None = None
    stop: bool = False

    def settle(self, index: int, error: BaseException | None) -> None:
        work = self.work
        if error is None:
            if index in work.machine_writes:
                self.known_machines.add(work.machine_writes[index])
            self.written += 1
            return
        kind = classify(error)
        WRITE_ERRORS.labels(kind.value).inc()
        owner = work.owners[index]
        if kind in RETRYABLE:
            # Stop issuing after the first retryable failure: when Cassandra hangs, a pass ends
            # after one timeout instead of one per statement.
            self.stop = True
            self.retry.add(owner)
            self.reason = self.reason or f"Cassandra write {kind.value}: {one_line(error)}"
        elif kind is Failure.rejected:
            work.rejected.setdefault(owner, f"Cassandra refused the write: {one_line(error)}")
        elif self.fatal is None:
            self.fatal = error


class CassandraSink:
    """Stores the twin's history topics in ``keyspace`` (default: ``TWIN_CASSANDRA__KEYSPACE``)."""

    name = "cassandra"
    topics: tuple[str, ...] = tuple(t.name for t in CATALOG if t.name in MAPPERS)

    def __init__(self, settings: Settings, *, keyspace: str | None = None) -> None:
        self.settings = settings
        self.keyspace = check_keyspace_name(keyspace or settings.cassandra.keyspace)
        self.max_in_flight = settings.cassandra.max_in_flight
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}
        self._pending: list[SinkRecord] = []
        # Outcomes of passes that ended in BackpressureError, reported with the flush that succeeds.
        self._rejected: list[Rejected] = []
        self._written_before = 0
        self._retries = 0
        # (line, machine, day) already in machines_by_line: one extra write per machine per day.
        self._known_machines: set[tuple[str, str, int]] = set()

    # -- the contract ----------------------------------------------------------------------------
    def setup(self) -> None:
        if self._session is not None:
            return
        retry_s = self.settings.sinks.retry_initial_s
        try:
            cluster, session = connect(self.settings)
        except CassandraUnreachableError as exc:
            raise BackpressureError(str(exc), retry_s) from exc
        try:
            self._check_schema(session)
            for key, cql in STATEMENTS.items():
                prepared = session.prepare(cql.format(ks=self.keyspace))
                prepared.is_idempotent = True  # lets the driver retry them on another node
                self._prepared[key] = prepared
        except SinkError:
            cluster.shutdown()
            raise
        except Exception as exc:
            cluster.shutdown()
            if classify(exc) in RETRYABLE:
                raise BackpressureError(f"Cassandra failed during setup: {one_line(exc)}", retry_s) from exc
            msg = f"cannot prepare the sink's statements in keyspace {self.keyspace}: {one_line(exc)}"
            raise SinkError(msg) from exc
        self._cluster, self._session = cluster, session
        log.info("cassandra sink: writing to keyspace %s, %d in flight", self.keyspace, self.max_in_flight)

    def add(self, record: SinkRecord) -> None:
        self._pending.append(record)

    def pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None
        self._prepared = {}

    def flush(self) -> FlushResult:
        if self._session is None:
            self.setup()
        if self._pending and self._all_hosts_down():
            # Skip a pass that can only fail; the driver keeps reconnecting in the background.
            raise BackpressureError("no Cassandra node is up", self.settings.sinks.retry_initial_s)
        written, retry, reason = self._write_pass()
        if retry:
            self._written_before += written
            self._retries += 1
            raise BackpressureError(reason, self.settings.sinks.retry_initial_s)
        result = FlushResult(self._written_before + written, self._retries, self._rejected)
        self._rejected, self._written_before, self._retries = [], 0, 0
        return result

    # -- one pass --------------------------------------------------------------------------------
    def _write_pass(self) -> tuple[int, bool, str]:
        """Write what is pending once; keeps what must be retried. Returns (rows, retry?, why)."""
        records = self._pending
        work = self._plan(records)
        written, retry_records, reason, fatal = self._execute(work)
        keep: list[SinkRecord] = []
        for i, record in enumerate(records):
            if i in work.rejected:
                self._rejected.append(Rejected(record, work.rejected[i]))
            elif i in retry_records:
                keep.append(record)
        self._pending = keep
        if fatal is not None:
            msg = f"Cassandra refused the sink's writes in keyspace {self.keyspace}: {one_line(fatal)}"
            raise SinkError(msg) from fatal
        return written, bool(keep), reason

    def _plan(self, records: list[SinkRecord]) -> _Pass:
        """Map every record to its statements; records no table can hold are rejected here."""
        work = _Pass()
        prepared = self._prepared
        in_batch: set[tuple[str, str, int]] = set()
        for i, record in enumerate(records):
            mapper = MAPPERS.get(record.topic)
            if mapper is None:
                work.rejected[i] = f"the cassandra sink does not store topic {record.topic!r}"
                continue
            try:
                writes = mapper(record.value)
                if record.topic in MACHINE_TOPICS:
                    at = len(work.statements) + len(writes)
                    writes = writes + self._machine_write(record.value, in_batch, work.machine_writes, at)
            except _MAPPING_ERRORS as exc:
                work.rejected[i] = f"cannot map {record.topic} event to rows: {one_line(exc)}"
                continue
            for key, params in writes:
                work.statements.append((prepared[key], params))
                work.owners.append(i)
        return work

    def _execute(self, work: _Pass) -> tuple[int, set[int], str, BaseException | None]:
        """Run the statements, ``max_in_flight`` at a time. Returns (rows written, records to retry,
        why, a fatal error); refused records are added to ``work.rejected``.

        Our own bounded ``execute_async`` loop, not the driver's ``execute_concurrent``: when
        the node goes away mid-pass, that one fails each queued statement synchronously inside the
        previous one's error callback, recursing until a RecursionError escapes as a TypeError from
        its result sorting (cassandra-driver 3.30), and the sink would crash instead of pausing.
        Here callbacks (on the driver's IO thread) only hand outcomes over; this thread issues and
        settles, so a failing node can never make issuing recurse.
        """
        session = self._session
        assert session is not None
        tally = _Tally(work, self._known_machines)
        slots = threading.Semaphore(self.max_in_flight)
        outcomes: queue.SimpleQueue[tuple[int, BaseException | None]] = queue.SimpleQueue()

        def succeeded(_rows: Any, index: int) -> None:
            outcomes.put((index, None))
            slots.release()

        def failed(exc: BaseException, index: int) -> None:
            outcomes.put((index, exc))
            slots.release()

        issued = in_flight = 0
        for index, (statement, params) in enumerate(work.statements):
            while not outcomes.empty():
                tally.settle(*outcomes.get_nowait())
                in_flight -= 1
            if tally.stop:
                break
            slots.acquire()
            in_flight += 1
            issued = index + 1
            try:
                future = session.execute_async(statement, params)
            except Exception as exc:  # NoHostAvailable can be raised before a request is sent
                failed(exc, index)
                continue
            future.add_callbacks(succeeded, failed, callback_args=(index,), errback_args=(index,))
        # Every request ends in a callback (the driver enforces request_timeout); the wait below
        # is only a backstop so a lost callback can never hang the sink: unsettled records retry.
        patience = self.settings.cassandra.request_timeout_s * 3
        while in_flight:
            try:
                tally.settle(*outcomes.get(timeout=patience))
            except queue.Empty:
                tally.reason = tally.reason or f"no answer from Cassandra within {patience:.0f}s"
                tally.retry.update(work.owners[:issued])  # idempotent: resending written ones is safe
                break
            in_flight -= 1
        # Records with statements never issued (the pass stopped early) are kept as well.
        tally.retry.update(work.owners[issued:])
        return tally.written, tally.retry, tally.reason, tally.fatal

    def _machine_write(
        self,
        value: dict[str, Any],
        in_batch: set[tuple[str, str, int]],
        machine_writes: dict[int, tuple[str, str, int]],
        index: int,
    ) -> list[tuple[str, tuple[Any, ...]]]:
        from cassandra.query import UNSET_VALUE

        line, machine, machine_type, ms = machine_of_line(value)
        key = (line, machine, day_of(ms))
        if key in self._known_machines or key in in_batch:
            return []
        in_batch.add(key)
        machine_writes[index] = key  # remembered as known once this statement succeeded
        # Only telemetry knows the machine type; the other events must not blank it.
        return [("machine_by_line", (line, machine, machine_type or UNSET_VALUE, ms * 1000))]

    # -- helpers ---------------------------------------------------------------------------------
    def _check_schema(self, session: Session) -> None:
        migrator = Migrator(session, self.keyspace)
        if not migrator.keyspace_exists():
            msg = f"keyspace {self.keyspace} does not exist; run `twin db migrate{self._ks_flag()}` first"
            raise MigrationError(msg)
        pending = migrator.pending()
        if pending:
            names = ", ".join(m.label for m in pending)
            msg = (
                f"keyspace {self.keyspace} is not migrated ({names} pending); "
                f"run `twin db migrate{self._ks_flag()}`"
            )
            raise MigrationError(msg)

    def _ks_flag(self) -> str:
        return "" if self.keyspace == self.settings.cassandra.keyspace else f" --keyspace {self.keyspace}"

    def _all_hosts_down(self) -> bool:
        if self._cluster is None:
            return False
        hosts = self._cluster.metadata.all_hosts()
        return bool(hosts) and all(h.is_up is False for h in hosts)
