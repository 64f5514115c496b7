"""CassandraHistory against the real local Cassandra: an hour and a half of the simulated line's
alarms and KPI windows (plus a hand-made second line with acknowledged alarms and line KPIs) written
through the real ``CassandraSink`` into a private keyspace, then read back. They must come back as
``MemoryHistory`` fed the same records answers them. Also checked: the look-back bounds, connecting,
and a Cassandra outage, which must be a one-line ``HistoryUnavailableError`` that goes away once
Cassandra is back."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cassandra import DriverException
from cassandra.cluster import NoHostAvailable, Session

from localstack import Infra
from sinks.base import SinkRecord
from sinks.cassandra import CassandraSink, Migrator
from sinks.cassandra.schema import replication
from tests.integration.sinks.sink_helpers import history
from tests.unit.sinks import cassandra_samples as sample
from twin.errors import HistoryUnavailableError
from twin.settings import Settings
from xr_gateway.history import (
    DAY_MS,
    CassandraHistory,
    MemoryHistory,
    alarm_order,
    kpi_order,
)
from xr_gateway.hub import Hub
from xr_gateway.settings import GatewaySettings

MIN = 60_000
HOUR = 3_600_000
STREAMS = {"twin.alarms": "alarms", "twin.kpis": "kpis"}


# -- the records -----------------------------------------------------------------------------------
def _alarm(
    alarm_id: str, machine: str, line: str, status: str, t: int, start: int, **extra: Any
) -> dict[str, Any]:
    acked = status in ("ACTIVE_ACK", "CLEARED_ACK")
    cleared = status.startswith("CLEARED")
    eid = str(uuid.uuid5(uuid.UUID(alarm_id), f"{status}@{t}"))
    return sample.wire(
        "twin.alarms",
        {
            "event_id": eid,
            "event_time": t,
            "source": "test",
            "correlation_id": eid,
            "alarm_id": alarm_id,
            "line_id": line,
            "machine_id": machine,
            "alarm_type": "MachineDown",
            "rule_id": "machine-down",
            "severity": "CRITICAL",
            "status": status,
            "start_time": start,
            "end_time": t if cleared else None,
            "ack_time": start + MIN if acked else None,
            "acked_by": "op-7" if acked else None,
            "clear_time": t if cleared else None,
            "cleared_by": "rule" if cleared else None,
            "value": None,
            "message": f"{machine} is down",
            **extra,
        },
    )


def _kpi(scope: str, scope_id: str, line: str, start: int, size_s: int, oee: float) -> dict[str, Any]:
    record = sample.kpi(scope, scope_id, start=start, window_s=size_s, oee=oee)
    return sample.wire("twin.kpis", {**record, "line_id": line})


def _state(machine: str, line: str, t: int) -> dict[str, Any]:
    return sample.wire("factory.state", {**sample.state(machine, t), "line_id": line})


def _line_2(t0: int) -> list[tuple[str, dict[str, Any]]]:
    """A second line: one machine whose alarms are acknowledged (the simulated line's never are),
    and line-scope KPI windows next to machine ones, for both window sizes."""
    a, b, c, d = (str(uuid.uuid5(uuid.NAMESPACE_URL, f"line-2/{n}")) for n in "abcd")
    out: list[tuple[str, dict[str, Any]]] = [("factory.state", _state("press-9", "line-2", t0))]
    out += [
        ("twin.alarms", _alarm(a, "press-9", "line-2", "ACTIVE_UNACK", t0 + 5 * MIN, t0 + 5 * MIN)),
        ("twin.alarms", _alarm(a, "press-9", "line-2", "ACTIVE_ACK", t0 + 6 * MIN, t0 + 5 * MIN)),
        ("twin.alarms", _alarm(a, "press-9", "line-2", "CLEARED_ACK", t0 + 30 * MIN, t0 + 5 * MIN)),
        ("twin.alarms", _alarm(b, "press-9", "line-2", "ACTIVE_UNACK", t0 + 40 * MIN, t0 + 40 * MIN)),
        ("twin.alarms", _alarm(b, "press-9", "line-2", "ACTIVE_ACK", t0 + 85 * MIN, t0 + 40 * MIN)),
        (
            "twin.alarms",
            _alarm(c, "press-9", "line-2", "CLEARED_UNACK", t0 + 50 * MIN, t0 + 45 * MIN, details={}),
        ),
        ("twin.alarms", _alarm(d, "press-9", "line-2", "ACTIVE_UNACK", t0 + 60 * MIN, t0 + 60 * MIN)),
    ]
    for i in range(0, 80, 10):
        start = t0 + i * MIN
        out.append(("twin.kpis", _kpi("MACHINE", "press-9", "line-2", start, 60, 0.5 + i / 1000)))
        out.append(("twin.kpis", _kpi("LINE", "line-2", "line-2", start, 60, 0.4 + i / 1000)))
    out.append(("twin.kpis", _kpi("LINE", "line-2", "line-2", t0, 3600, 0.45)))
    out.append(("twin.kpis", _kpi("MACHINE", "press-9", "line-2", t0, 3600, 0.55)))
    # line-1 as a whole (the simulated line's machines have no line-scope windows of their own here)
    for i in range(0, 80, 20):
        out.append(("twin.kpis", _kpi("LINE", "line-1", "line-1", t0 + i * MIN, 60, 0.6)))
    out.append(("twin.kpis", _kpi("LINE", "line-1", "line-1", t0, 3600, 0.61)))
    return out


class Written:
    """What the module wrote to its keyspace, and a MemoryHistory fed the same records."""

    def __init__(self, keyspace: str, alarms: list[dict[str, Any]], kpis: list[dict[str, Any]]) -> None:
        self.keyspace = keyspace
        self.alarms = alarms
        self.kpis = kpis
        self.end_ms = max(r["event_time"] for r in alarms + kpis)
        hub = Hub(GatewaySettings(history_max=100_000))
        # In the order a well-behaved feed delivers them (events in time order; simultaneous ones
        # in the processors' emit order). Arrival order is the one thing Cassandra cannot know.
        hub.publish(("alarms", r) for r in sorted(alarms, key=alarm_order))
        hub.publish(("kpis", r) for r in sorted(kpis, key=kpi_order))
        self.memory = MemoryHistory(hub)

    def store(self, session: Session, **kwargs: Any) -> CassandraHistory:
        now_s = (self.end_ms + MIN) / 1000
        return CassandraHistory(session, self.keyspace, clock=lambda: now_s, **kwargs)


@pytest.fixture(scope="module")
def written(stack: Infra, cassandra: Session, settings: Settings) -> Iterator[Written]:
    keyspace = f"test_history_cassandra_{uuid.uuid4().hex[:8]}"
    Migrator(cassandra, keyspace).migrate(replication_options=replication(1))
    try:
        simulated = [
            (o.topic, sample.wire(o.topic, o.record))
            for o in history(1.5)
            if o.topic in ("factory.state", *STREAMS)
        ]
        kept = simulated + _line_2(sample.T0)
        sink = CassandraSink(settings, keyspace=keyspace)
        sink.setup()
        try:
            for offset, (topic, record) in enumerate(kept):
                sink.add(SinkRecord(topic, 0, offset, None, record))
            result = sink.flush()
            assert result.rejected == [] and sink.pending() == 0
        finally:
            sink.close()
        alarms = [r for topic, r in kept if topic == "twin.alarms"]
        kpis = [r for topic, r in kept if topic == "twin.kpis"]
        windows = [(r["scope"], r["scope_id"], r["window_size_s"], r["window_start"]) for r in kpis]
        assert len(set(windows)) == len(windows), "each window once: Cassandra keeps a window once"
        yield Written(keyspace, alarms, kpis)
    finally:
        cassandra.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")


def newest_per_alarm(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """MemoryHistory's events reduced to what Cassandra keeps: each alarm's latest event."""
    seen: set[str] = set()
    out = []
    for r in records:
        if r["alarm_id"] not in seen:
            seen.add(r["alarm_id"])
            out.append(r)
    return out


def same(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """What a client sees: equal JSON (values and types: ints for times) in the same order, with
    the fields in the same order. Only the keys inside an alarm's ``details`` map may come in another
    order: Cassandra keeps a map sorted by key."""
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert [list(r) for r in got] == [list(r) for r in expected]


# -- alarms ----------------------------------------------------------------------------------------
ALARM_FILTERS = [
    (None, None),
    ("cnc-1", None),
    ("press-9", None),
    (None, "line-1"),
    (None, "line-2"),
    ("press-9", "line-2"),
    ("cnc-1", "line-2"),
    ("nope", None),
    (None, "nope"),
]


@pytest.mark.parametrize(("machine_id", "line_id"), ALARM_FILTERS)
def test_open_alarms_are_what_memory_answers(
    written: Written, cassandra: Session, machine_id: str | None, line_id: str | None
) -> None:
    store = written.store(cassandra)
    for limit in (1, 2, 1000):
        args: dict[str, Any] = {
            "machine_id": machine_id,
            "line_id": line_id,
            "open_only": True,
            "limit": limit,
        }
        same(store.recent_alarms(**args), written.memory.recent_alarms(**args))


@pytest.mark.parametrize(("machine_id", "line_id"), ALARM_FILTERS)
def test_alarms_are_each_alarms_latest_event_as_memory_has_it(
    written: Written, cassandra: Session, machine_id: str | None, line_id: str | None
) -> None:
    store = written.store(cassandra)
    events = written.memory.recent_alarms(
        machine_id=machine_id, line_id=line_id, open_only=False, limit=10**6
    )
    for limit in (1, 3, 1000):
        got = store.recent_alarms(machine_id=machine_id, line_id=line_id, open_only=False, limit=limit)
        same(got, newest_per_alarm(events)[:limit])


def test_the_alarm_data_covers_every_case(written: Written, cassandra: Session) -> None:
    store = written.store(cassandra)
    every = store.recent_alarms(machine_id=None, line_id=None, open_only=False, limit=1000)
    open_ = store.recent_alarms(machine_id=None, line_id=None, open_only=True, limit=1000)
    statuses = {r["status"] for r in every}
    assert statuses == {"ACTIVE_UNACK", "ACTIVE_ACK", "CLEARED_UNACK", "CLEARED_ACK"}
    assert {r["status"] for r in open_} == {"ACTIVE_UNACK", "ACTIVE_ACK"}  # open_only: active now
    assert len({r["machine_id"] for r in every}) >= 3
    assert len(every) == len({r["alarm_id"] for r in written.alarms}) > len(open_) > 0
    assert [r["event_time"] for r in every] == sorted((r["event_time"] for r in every), reverse=True)
    # an older-started alarm with a newer event comes first, as on the live feed
    starts = [r["start_time"] for r in every]
    assert starts != sorted(starts, reverse=True)


# -- KPI windows -----------------------------------------------------------------------------------
KPI_FILTERS = [
    (None, None, None),
    (None, None, 3600),
    ("line-1", None, None),
    ("line-2", None, 60),
    (None, "cnc-1", None),
    (None, "cnc-1", 60),
    (None, "line-1", None),
    (None, "line-2", 3600),
    ("line-1", "line-1", None),
    ("line-2", "cnc-1", None),
    (None, "nope", None),
    ("nope", None, None),
    (None, None, 17),
]


@pytest.mark.parametrize(("line_id", "scope_id", "window_size_s"), KPI_FILTERS)
def test_kpis_are_what_memory_answers(
    written: Written,
    cassandra: Session,
    line_id: str | None,
    scope_id: str | None,
    window_size_s: int | None,
) -> None:
    store = written.store(cassandra)
    for limit in (1, 7, 1000):
        args: dict[str, Any] = {
            "line_id": line_id,
            "scope_id": scope_id,
            "window_size_s": window_size_s,
            "limit": limit,
        }
        same(store.recent_kpis(**args), written.memory.recent_kpis(**args))


def test_the_kpi_data_covers_every_case(written: Written, cassandra: Session) -> None:
    store = written.store(cassandra)
    every = store.recent_kpis(line_id=None, scope_id=None, window_size_s=None, limit=1000)
    assert len(every) == len(written.kpis)
    assert {(r["scope"], r["window_size_s"]) for r in every} == {
        ("MACHINE", 60),
        ("MACHINE", 3600),
        ("LINE", 60),
        ("LINE", 3600),
    }
    assert {r["line_id"] for r in every} == {"line-1", "line-2"}


# -- bounds ----------------------------------------------------------------------------------------
def test_the_look_back_keeps_old_alarms_that_are_still_active(written: Written, cassandra: Session) -> None:
    """Three days later, with a two-day look-back: only the alarms still active are left, and no
    KPI window."""
    later_s = (written.end_ms + 3 * DAY_MS) / 1000
    store = CassandraHistory(cassandra, written.keyspace, days=2, clock=lambda: later_s)
    for machine_id, line_id in ALARM_FILTERS:
        events = written.memory.recent_alarms(
            machine_id=machine_id, line_id=line_id, open_only=False, limit=10**6
        )
        active = [r for r in newest_per_alarm(events) if r["status"].startswith("ACTIVE")]
        for open_only in (False, True):
            got = store.recent_alarms(machine_id=machine_id, line_id=line_id, open_only=open_only, limit=1000)
            same(got, active)
    assert store.recent_alarms(machine_id=None, line_id=None, open_only=False, limit=1000)
    assert store.recent_kpis(line_id=None, scope_id=None, window_size_s=None, limit=1000) == []


def test_the_look_back_counts_from_now(written: Written, cassandra: Session) -> None:
    """A look-back that starts half-way through the data: alarms that started before it and are
    closed are gone, KPI windows that started before it are gone."""
    cut = sample.T0 + 45 * MIN
    now_s = (cut + DAY_MS) / 1000
    store = CassandraHistory(cassandra, written.keyspace, days=1, clock=lambda: now_s)
    events = written.memory.recent_alarms(machine_id=None, line_id=None, open_only=False, limit=10**6)
    expected = [
        r for r in newest_per_alarm(events) if r["start_time"] >= cut or r["status"].startswith("ACTIVE")
    ]
    same(store.recent_alarms(machine_id=None, line_id=None, open_only=False, limit=1000), expected)
    windows = written.memory.recent_kpis(line_id=None, scope_id=None, window_size_s=None, limit=10**6)
    same(
        store.recent_kpis(line_id=None, scope_id=None, window_size_s=None, limit=1000),
        [r for r in windows if r["window_start"] >= cut],
    )


# -- connecting ------------------------------------------------------------------------------------
def test_connect_reads_the_keyspace_of_the_settings(written: Written, settings: Settings) -> None:
    scoped = settings.model_copy(deep=True)
    scoped.cassandra.keyspace = written.keyspace
    now_s = (written.end_ms + MIN) / 1000
    store = CassandraHistory.connect(scoped, clock=lambda: now_s)
    try:
        assert store.window_sizes_s == tuple(settings.processors.kpi_windows_s)
        args: dict[str, Any] = {"machine_id": None, "line_id": None, "open_only": True, "limit": 50}
        same(store.recent_alarms(**args), written.memory.recent_alarms(**args))
    finally:
        store.close()
        store.close()  # twice is harmless


def test_connect_refuses_a_keyspace_that_is_missing_or_not_migrated(
    settings: Settings, keyspace: str
) -> None:
    with pytest.raises(
        HistoryUnavailableError, match=r"is not migrated \(0001_history[^)]* pending\).*twin db migrate"
    ):
        CassandraHistory.connect(settings, keyspace=keyspace)  # created by the fixture, no tables
    with pytest.raises(HistoryUnavailableError, match=r"does not exist.*twin db migrate --keyspace"):
        CassandraHistory.connect(settings, keyspace=f"never_{uuid.uuid4().hex[:8]}")


def test_connect_to_an_unreachable_cassandra_is_history_unavailable(settings: Settings) -> None:
    nowhere = settings.model_copy(deep=True)
    nowhere.cassandra.port = 1  # nothing listens there
    nowhere.cassandra.connect_timeout_s = 1.0
    with pytest.raises(HistoryUnavailableError, match="not reachable"):
        CassandraHistory.connect(nowhere)


# -- an outage -------------------------------------------------------------------------------------
class CuttableProxy:
    """A TCP forwarder to Cassandra: cutting it is an outage, as the driver sees one, without
    stopping the server that other tests share."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open = True
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                self.sockets.append(client)
                if not self.open:
                    _drop(client)
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    _drop(client)
                    continue
                upstream.settimeout(None)
                self.sockets.append(upstream)
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        _drop(dst)

    def cut(self) -> None:
        """Drop every connection, and every new one until :meth:`restore`."""
        with self.lock:
            self.open = False
            for s in self.sockets:
                _drop(s)

    def restore(self) -> None:
        with self.lock:
            self.open = True

    def close(self) -> None:
        self.cut()
        _drop(self.listener)  # wakes the accept() blocked in its thread
        self.listener.close()
        for thread in self.threads:
            thread.join(5)
        for s in self.sockets:
            s.close()


def _drop(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)


def test_an_outage_is_history_unavailable_and_passes(
    written: Written, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="xr_gateway.history")
    proxy = CuttableProxy(("127.0.0.1", settings.cassandra.port))
    via_proxy = settings.model_copy(deep=True)
    via_proxy.cassandra.contact_points = ["127.0.0.1"]
    via_proxy.cassandra.port = proxy.port
    via_proxy.cassandra.keyspace = written.keyspace
    via_proxy.cassandra.request_timeout_s = 3.0
    now_s = (written.end_ms + MIN) / 1000
    alarms: dict[str, Any] = {"machine_id": None, "line_id": None, "open_only": False, "limit": 20}
    kpis: dict[str, Any] = {"line_id": None, "scope_id": None, "window_size_s": None, "limit": 20}
    try:
        store = CassandraHistory.connect(via_proxy, clock=lambda: now_s)
        try:
            before_alarms, before_kpis = store.recent_alarms(**alarms), store.recent_kpis(**kpis)
            assert before_alarms and before_kpis
            proxy.cut()
            reads: list[Callable[[], object]] = [
                lambda: store.recent_alarms(**alarms),
                lambda: store.recent_kpis(**kpis),
            ]
            for read in reads:
                with pytest.raises(HistoryUnavailableError) as caught:
                    read()
                message = str(caught.value)
                assert message.startswith("history unavailable: Cassandra cannot answer (")
                assert "\n" not in message and len(message) < 400
                # The driver gave up (its request timeout, or no host left), not a bug in our code.
                assert isinstance(caught.value.__cause__, DriverException | NoHostAvailable)
            proxy.restore()
            deadline = time.monotonic() + 60
            while True:  # nobody reconnects it: the driver does, by itself
                try:
                    after = store.recent_alarms(**alarms)
                    break
                except HistoryUnavailableError:
                    assert time.monotonic() < deadline, "the history did not come back after the outage"
                    time.sleep(0.5)
            same(after, before_alarms)
            same(store.recent_kpis(**kpis), before_kpis)
            # An operator's log has the outage once, and its end once, however many requests failed.
            history_log = [r for r in caplog.records if r.name == "xr_gateway.history"]
            assert [r.levelname for r in history_log] == ["WARNING", "INFO"], history_log
            assert "Cassandra cannot answer" in history_log[0].getMessage()
            assert "answers again" in history_log[1].getMessage()
        finally:
            store.close()
    finally:
        proxy.close()
