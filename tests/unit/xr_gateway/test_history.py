"""CassandraHistory without Cassandra: rows to records, the bounds of every read, and driver errors
to ``HistoryUnavailableError``. The answers themselves are checked against the real Cassandra in
tests/integration/xr_gateway/test_history_cassandra.py."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from cassandra import ReadTimeout
from cassandra.cluster import NoHostAvailable
from cassandra.util import OrderedMapSerializedKey

from schemas import load_schema
from sinks.cassandra import rows
from twin.codec import without_logical_types
from twin.errors import HistoryUnavailableError
from xr_gateway.history import (
    ALARM_FIELDS,
    CLEARED_STATUSES,
    DAY_MS,
    KPI_FIELDS,
    CassandraHistory,
    alarm_record,
    epoch_ms,
    kpi_record,
)
from xr_gateway.hub import ACTIVE_STATUSES, CLOSED_ALARM

NOW_MS = 1_764_000_000_000


def _dt(ms: int, *, aware: bool = True) -> datetime:
    """A timestamp as the driver hands it over (naive UTC), or as ``History`` does (aware)."""
    naive = datetime(1970, 1, 1) + timedelta(milliseconds=ms)
    return naive.replace(tzinfo=UTC) if aware else naive


def as_the_feed_decodes(schema_key: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` written with its topic's schema and read back as the gateway's feed reads it (plain
    wire values): a record with a field missing, extra or of the wrong type cannot come back equal."""
    schema = load_schema(schema_key)
    buf = io.BytesIO()
    fastavro.validate(record, schema.parsed, raise_errors=True, strict=True)
    fastavro.schemaless_writer(buf, schema.parsed, dict(record))
    buf.seek(0)
    plain = fastavro.parse_schema(without_logical_types(schema.definition))
    decoded: dict[str, Any] = fastavro.schemaless_reader(buf, plain)  # type: ignore[assignment]
    return decoded


def test_the_statuses_are_the_sinks() -> None:
    assert ACTIVE_STATUSES == rows.ACTIVE_STATUSES
    assert ACTIVE_STATUSES + CLEARED_STATUSES == rows.ALARM_STATUSES
    assert CLOSED_ALARM in CLEARED_STATUSES


@pytest.mark.parametrize("ms", [0, 1, 1_764_000_000_123, 1_764_000_000_999, rows.MAX_EVENT_TIME_MS])
def test_times_come_back_as_the_same_epoch_millis(ms: int) -> None:
    assert epoch_ms(_dt(ms)) == ms
    assert epoch_ms(_dt(ms, aware=False)) == ms
    assert epoch_ms(None) is None


def test_an_alarm_row_is_an_alarm_record() -> None:
    alarm_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    row: dict[str, Any] = {
        "alarm_id": alarm_id,
        "machine_id": "cnc-1",
        "line_id": "line-1",
        "alarm_type": "HighVibration",
        "rule_id": "vibration-high",
        "severity": "MAJOR",
        "status": "CLEARED_UNACK",
        "start_time": _dt(NOW_MS),
        "end_time": _dt(NOW_MS + 61_001),
        "ack_time": None,
        "acked_by": None,
        "clear_time": _dt(NOW_MS + 61_001),
        "cleared_by": "rule",
        "value": 7.5,
        "message": "vibration above 7 mm/s",
        "details": None,  # an empty map, as Cassandra returns it
        "event_id": event_id,
        "event_time": _dt(NOW_MS + 61_001),
        "source": "processor:alarms",
        "correlation_id": "c-1",
    }
    record = alarm_record(row)
    assert list(record) == list(ALARM_FIELDS)
    assert record["start_time"] == NOW_MS and record["event_time"] == record["clear_time"] == NOW_MS + 61_001
    assert record["ack_time"] is None and record["details"] == {}
    assert record["alarm_id"] == alarm_id and record["event_id"] == event_id
    mapped = alarm_record({**row, "details": OrderedMapSerializedKey(None, 0)})
    assert type(mapped["details"]) is dict
    # What REST returns is what the websocket feed decodes from twin.alarms, field for field.
    assert as_the_feed_decodes("alarm", record) == record


def test_a_kpi_row_is_a_kpi_record() -> None:
    event_id = str(uuid.uuid4())
    row: dict[str, Any] = {name: 1.0 for name in KPI_FIELDS}  # the ratios and durations
    del row["window_size_s"]
    row |= {
        "event_id": event_id,
        "source": "processor:kpi",
        "correlation_id": event_id,
        "line_id": "line-1",
        "scope": "MACHINE",
        "scope_id": "cnc-1",
        "total_count": 12,
        "good_count": 11,
        "failures": 0,
        "late_events": 0,
        "mtbf_s": None,
        "window_s": 60,
        "window_start": _dt(NOW_MS),
        "window_end": _dt(NOW_MS + 60_000),
        "event_time": _dt(NOW_MS + 60_000),
        "day": "2025-11-24",  # a key column the record does not have
    }
    record = kpi_record(row)
    assert as_the_feed_decodes("kpi_window", record) == record
    assert list(record) == list(KPI_FIELDS)
    assert record["window_size_s"] == 60
    assert (record["window_start"], record["window_end"], record["event_time"]) == (
        NOW_MS,
        NOW_MS + 60_000,
        NOW_MS + 60_000,
    )


# -- the reads ---------------------------------------------------------------------------------------
class RecordingHistory:
    """Stands in for ``sinks.cassandra.queries.History``: records each read, answers nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def machines_of_line(self, line_id: str) -> list[str]:
        self.calls.append(("machines_of_line", {"line_id": line_id}))
        return ["m-1", "m-2"]

    def lines(self) -> list[str]:
        self.calls.append(("lines", {}))
        return ["line-1"]

    def alarms_by_status(self, statuses: Sequence[str], **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(("alarms_by_status", {"statuses": tuple(statuses), **kwargs}))
        return iter([])

    def alarms_of_machines(self, machines: Sequence[str], **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(("alarms_of_machines", {"machines": list(machines), **kwargs}))
        return iter([])

    def kpis(
        self, scope: str, scope_ids: Sequence[str], window_s: int, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        call = {"scope": scope, "scope_ids": list(scope_ids), "window_s": window_s, **kwargs}
        self.calls.append(("kpis", call))
        return iter([])


def _store(days: int = 7) -> tuple[CassandraHistory, RecordingHistory]:
    store = CassandraHistory(object(), "factory_twin", days=days, clock=lambda: NOW_MS / 1000)
    fake = RecordingHistory()
    store.history = fake  # type: ignore[assignment]
    return store, fake


@pytest.mark.parametrize(
    ("machine_id", "line_id", "open_only"),
    [(m, line, o) for m in (None, "m-1") for line in (None, "line-1") for o in (False, True)],
)
def test_every_alarm_read_is_bounded(machine_id: str | None, line_id: str | None, open_only: bool) -> None:
    """Only the ACTIVE state partitions (alarms active now) are read whole; every other read starts
    at the look-back, and each is capped."""
    store, fake = _store(days=3)
    assert store.recent_alarms(machine_id=machine_id, line_id=line_id, open_only=open_only, limit=5) == []
    since = NOW_MS - 3 * DAY_MS
    reads = [(name, call) for name, call in fake.calls if name != "machines_of_line"]
    assert reads
    for name, call in reads:
        assert call["limit"] == store.max_rows
        whole = name == "alarms_by_status" and call["statuses"] == ACTIVE_STATUSES
        assert whole or call["since_ms"] == since, (name, call)
    if open_only:  # from alarms_by_state, never CLEARED_ACK
        assert {name for name, _ in reads} == {"alarms_by_status"}
        assert all(CLOSED_ALARM not in call["statuses"] for _, call in reads)
    elif machine_id is None and line_id is None:
        assert {name for name, _ in reads} == {"alarms_by_status"}
    else:
        machines = [machine_id] if machine_id else ["m-1", "m-2"]
        assert (
            "alarms_of_machines",
            {"machines": machines, "since_ms": since, "limit": store.max_rows},
        ) in reads
        # plus the alarms still active that started before the look-back
        assert any(call.get("until_ms") == since for _, call in reads)


@pytest.mark.parametrize(
    ("line_id", "scope_id", "window_size_s", "scopes", "sizes"),
    [
        (None, None, None, {("LINE", "line-1"), ("MACHINE", "m-1"), ("MACHINE", "m-2")}, {60, 3600}),
        ("line-2", None, 60, {("LINE", "line-2"), ("MACHINE", "m-1"), ("MACHINE", "m-2")}, {60}),
        (None, "m-1", 3600, {("LINE", "m-1"), ("MACHINE", "m-1")}, {3600}),
    ],
)
def test_every_kpi_read_is_one_bounded_partition_series(
    line_id: str | None,
    scope_id: str | None,
    window_size_s: int | None,
    scopes: set[tuple[str, str]],
    sizes: set[int],
) -> None:
    store, fake = _store(days=2)
    got = store.recent_kpis(line_id=line_id, scope_id=scope_id, window_size_s=window_size_s, limit=9)
    assert got == []
    reads = [call for name, call in fake.calls if name == "kpis"]
    assert {(c["scope"], c["scope_ids"][0]) for c in reads} == scopes
    assert {c["window_s"] for c in reads} == sizes
    assert len(reads) == len(scopes) * len(sizes)
    for call in reads:
        assert len(call["scope_ids"]) == 1 and call["limit"] == 9
        assert call["since_ms"] == NOW_MS - 2 * DAY_MS and call["until_ms"] == NOW_MS + DAY_MS


# -- failures ----------------------------------------------------------------------------------------
class FailingSession:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def prepare(self, _cql: str) -> Any:
        raise self.error

    def execute(self, *_args: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            NoHostAvailable("Unable to complete the operation against any hosts", {}),
            "NoHostAvailable: Unable to complete the operation against any hosts",
        ),
        (
            NoHostAvailable("Unable to connect", {"127.0.0.1:9042": ConnectionRefusedError(111, "refused")}),
            "NoHostAvailable: ConnectionRefusedError: [Errno 111] refused",
        ),
        (ReadTimeout("Operation timed out\n - received only 0 responses."), "ReadTimeout: Operation timed"),
    ],
)
def test_a_driver_error_is_one_line_history_unavailable(error: BaseException, reason: str) -> None:
    store = CassandraHistory(FailingSession(error), "factory_twin")
    reads: list[Callable[[], object]] = [
        lambda: store.recent_alarms(machine_id=None, line_id=None, open_only=True, limit=5),
        lambda: store.recent_kpis(line_id=None, scope_id="m-1", window_size_s=60, limit=5),
    ]
    for read in reads:
        with pytest.raises(HistoryUnavailableError) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(f"history unavailable: Cassandra cannot answer ({reason}")
        assert "\n" not in message
        assert caught.value.__cause__ is error


def test_a_bug_is_not_disguised_as_an_outage() -> None:
    store = CassandraHistory(FailingSession(KeyError("oops")), "factory_twin")
    with pytest.raises(KeyError):
        store.recent_alarms(machine_id=None, line_id=None, open_only=True, limit=5)


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CassandraHistory(object(), "factory_twin", days=0)
