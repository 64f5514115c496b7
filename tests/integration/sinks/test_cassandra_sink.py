"""The Cassandra sink against the real local Cassandra: migrations, every event type written and
read back, idempotent re-writes, alarm state partitions, rejected values, TTLs."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from cassandra.cluster import Session

from sinks.base import SinkRecord
from sinks.cassandra import CassandraSink, Migrator, load_migrations
from sinks.cassandra.queries import History
from sinks.cassandra.schema import replication
from tests.unit.sinks import cassandra_samples as sample
from twin.errors import BackpressureError, MigrationError
from twin.settings import Settings

HOUR = 3_600_000


def migrate(cassandra: Session, keyspace: str, ttl_s: dict[str, int] | None = None) -> Migrator:
    migrator = Migrator(cassandra, keyspace)
    migrator.migrate(replication_options=replication(1), ttl_s=ttl_s)
    return migrator


@pytest.fixture
def sink(cassandra: Session, keyspace: str, settings: Settings) -> Iterator[CassandraSink]:
    migrate(cassandra, keyspace)
    s = CassandraSink(settings, keyspace=keyspace)
    s.setup()
    yield s
    s.close()


def records(*items: tuple[str, dict[str, object]]) -> list[SinkRecord]:
    return [SinkRecord(topic, 0, i, None, value) for i, (topic, value) in enumerate(items)]


def write(sink: CassandraSink, batch: list[SinkRecord]) -> int:
    for r in batch:
        sink.add(r)
    result = sink.flush()
    assert result.rejected == [] and sink.pending() == 0
    return result.written


def table_rows(cassandra: Session, keyspace: str, table: str) -> list[tuple[object, ...]]:
    return sorted((tuple(r) for r in cassandra.execute(f"SELECT * FROM {keyspace}.{table}")), key=repr)


def test_migrating_twice_changes_nothing(cassandra: Session, keyspace: str) -> None:
    first = Migrator(cassandra, keyspace).migrate(
        replication_options=replication(1), ttl_s={"telemetry": 86400}
    )
    shipped = [m.label for m in load_migrations()]
    assert [m.label for m in first.applied] == shipped
    assert ("telemetry", 0, 86400) in first.ttl_changes
    again = Migrator(cassandra, keyspace).migrate(
        replication_options=replication(1), ttl_s={"telemetry": 86400}
    )
    assert again.applied == [] and again.ttl_changes == [] and again.notes == []
    assert [a.label for a in again.already] == shipped
    assert Migrator(cassandra, keyspace).pending() == []


def test_a_keyspace_of_the_previous_version_upgrades_even_after_an_interrupted_migration(
    cassandra: Session, keyspace: str
) -> None:
    from cassandra.query import SimpleStatement

    first, *later = load_migrations()
    Migrator(cassandra, keyspace, [first]).migrate(replication_options=replication(1))
    # The next migration was cut off after its first statement: it ran, but is not recorded.
    interrupted = later[0].statements()[0]
    cassandra.execute(SimpleStatement(interrupted, keyspace=keyspace))
    report = Migrator(cassandra, keyspace).migrate(replication_options=replication(1))
    assert [m.label for m in report.applied] == [m.label for m in later]
    for table in ("alarms_by_machine", "alarms_by_state", "alarm_events"):
        columns = {
            r.column_name
            for r in cassandra.execute(
                "SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
                (keyspace, table),
            )
        }
        assert {"value", "peak_value", "clear_value"} <= columns, table


def test_an_alarm_reads_back_with_the_value_that_raised_it_its_peak_and_its_clearing_value(
    sink: CassandraSink, cassandra: Session, keyspace: str
) -> None:
    write(
        sink,
        records(
            ("twin.alarms", sample.alarm("ACTIVE_UNACK", sample.T0)),
            ("twin.alarms", sample.alarm("CLEARED_UNACK", sample.T0 + 60_000)),
        ),
    )
    h = History(cassandra, keyspace)
    [by_machine] = h.alarms_of_machines(["cnc-1"], limit=5)
    [by_state] = h.alarms_by_status(["CLEARED_UNACK"], limit=5)
    for alarm in (by_machine, by_state):
        assert (alarm["value"], alarm["peak_value"], alarm["clear_value"]) == (7.5, 9.1, 2.28)
        assert alarm["message"] == "vibration above 7 mm/s"
    raised, cleared = h.alarm_events(sample.ALARM_ID)
    assert (raised["clear_value"], cleared["clear_value"]) == (None, 2.28)


def test_the_sink_refuses_a_keyspace_that_is_not_migrated(keyspace: str, settings: Settings) -> None:
    with pytest.raises(MigrationError, match=r"twin db migrate --keyspace"):
        CassandraSink(settings, keyspace=keyspace).setup()


def test_an_unreachable_cassandra_at_start_is_backpressure_not_a_crash(settings: Settings) -> None:
    nowhere = settings.model_copy(deep=True)
    nowhere.cassandra.port = 1  # nothing listens there
    nowhere.cassandra.connect_timeout_s = 1.0
    with pytest.raises(BackpressureError, match="not reachable"):
        CassandraSink(nowhere).setup()


def test_every_event_type_is_written_and_read_back(
    sink: CassandraSink, cassandra: Session, keyspace: str
) -> None:
    t = sample.T0
    tele = [
        sample.telemetry("cnc-1", t + i * 1000, vibration_rms=float(i), spindle_temp=None) for i in range(3)
    ]
    batch = records(
        *(("factory.telemetry", v) for v in tele),
        ("factory.telemetry", sample.telemetry("cnc-2", t + 500)),
        ("factory.production", sample.part("cnc-1", t + 100, good=False)),
        ("factory.state", sample.state("cnc-1", t + 200)),
        ("twin.anomalies", sample.anomaly("cnc-1", t + 300)),
        ("twin.alarms", sample.alarm("ACTIVE_UNACK", t)),
        ("twin.kpis", sample.kpi(start=t)),
        ("twin.kpis", sample.kpi("MACHINE", "cnc-1", start=t, oee=0.6)),
        ("schedule.requests", sample.schedule_request(t)),
        ("schedule.plans", sample.schedule_plan(t + 50)),
    )
    assert write(sink, batch) > len(batch)  # alarms and machines_by_line add rows

    h = History(cassandra, keyspace)
    assert sorted(h.machines_of_line(sample.LINE)) == ["cnc-1", "cnc-2"]
    got = list(h.telemetry(["cnc-1"], since_ms=t - HOUR, until_ms=t + HOUR, limit=10))
    assert [r["channel_values"] for r in got] == [
        {"vibration_rms": 2.0},
        {"vibration_rms": 1.0},
        {"vibration_rms": 0.0},
    ]
    assert got[0]["channel_units"] == {"vibration_rms": "mm/s", "spindle_temp": "degC"}
    line = list(h.telemetry(h.machines_of_line(sample.LINE), since_ms=t - HOUR, until_ms=t + HOUR, limit=2))
    assert [r["machine_id"] for r in line] == ["cnc-1", "cnc-1"] and line[0]["event_time"] > line[1][
        "event_time"
    ]
    assert [
        r["machine_id"] for r in h.telemetry(["cnc-1", "cnc-2"], since_ms=t, until_ms=t + 1000, limit=5)
    ] == [
        "cnc-2",
        "cnc-1",
    ]
    [part] = h.events("parts", ["cnc-1"], since_ms=t, until_ms=t + HOUR, limit=5)
    assert part["good"] is False and part["scrap_reason"] == "burr"
    [change] = h.events("machine_states", ["cnc-1"], since_ms=t, until_ms=t + HOUR, limit=5)
    assert (change["previous"], change["state"]) == ("RUNNING", "DOWN")
    [anomaly] = h.events("anomalies", ["cnc-1"], since_ms=t, until_ms=t + HOUR, limit=5)
    assert anomaly["contributing"][0]["name"] == "vibration_rms"
    [line_kpi] = h.kpis("LINE", [sample.LINE], 60, since_ms=t, until_ms=t + HOUR, limit=5)
    assert line_kpi["oee"] == 0.75
    [machine_kpi] = h.kpis("MACHINE", ["cnc-1"], 60, since_ms=t, until_ms=t + HOUR, limit=5)
    assert machine_kpi["oee"] == 0.6
    [alarm] = h.alarms_of_machines(["cnc-1"], limit=5)
    assert (alarm["alarm_id"], alarm["status"]) == (sample.ALARM_ID, "ACTIVE_UNACK")
    assert [a["alarm_id"] for a in h.alarms_by_status(["ACTIVE_UNACK", "ACTIVE_ACK"], limit=5)] == [
        sample.ALARM_ID
    ]
    assert len(h.alarm_events(sample.ALARM_ID)) == 1
    [plan] = h.schedule_plans(sample.LINE, limit=5)
    assert plan["assignments"][0]["machine_id"] == "cnc-2"
    [request] = h.schedule_requests(sample.LINE, limit=5)
    assert request["jobs"][0]["processing_time_s"] == {"cnc-2": 30.0}


def test_flushing_the_same_records_twice_leaves_the_same_rows(
    sink: CassandraSink, cassandra: Session, keyspace: str
) -> None:
    batch = records(
        ("factory.telemetry", sample.telemetry()),
        ("factory.production", sample.part()),
        ("twin.alarms", sample.alarm("ACTIVE_UNACK", sample.T0)),
        ("twin.alarms", sample.alarm("ACTIVE_ACK", sample.T0 + 1000)),
        ("twin.kpis", sample.kpi()),
    )
    tables = ("telemetry", "parts", "alarms_by_machine", "alarms_by_state", "alarm_events", "kpi_windows")
    write(sink, batch)
    before = {t: table_rows(cassandra, keyspace, t) for t in tables}
    write(sink, batch)
    assert {t: table_rows(cassandra, keyspace, t) for t in tables} == before
    assert len(before["alarm_events"]) == 2 and len(before["alarms_by_state"]) == 1


LIFECYCLE = [("ACTIVE_UNACK", 0), ("ACTIVE_ACK", 60_000), ("CLEARED_ACK", 120_000)]


@pytest.mark.parametrize("order", ["in order", "reversed", "shuffled", "one by one reversed"])
def test_an_alarm_ends_in_exactly_one_state_partition_whatever_the_arrival_order(
    sink: CassandraSink, cassandra: Session, keyspace: str, order: str
) -> None:
    events = [("twin.alarms", sample.alarm(s, sample.T0 + dt)) for s, dt in LIFECYCLE]
    if order == "reversed":
        events.reverse()
    elif order == "shuffled":
        random.Random(7).shuffle(events)
    if order == "one by one reversed":
        for event in reversed(events):
            write(sink, records(event))
    else:
        write(sink, records(*events))

    h = History(cassandra, keyspace)
    everywhere = list(
        h.alarms_by_status(["ACTIVE_UNACK", "ACTIVE_ACK", "CLEARED_UNACK", "CLEARED_ACK"], limit=10)
    )
    assert [(a["alarm_id"], a["status"]) for a in everywhere] == [(sample.ALARM_ID, "CLEARED_ACK")]
    assert list(h.alarms_by_status(["ACTIVE_UNACK", "ACTIVE_ACK"], limit=10)) == []
    [latest] = h.alarms_of_machines(["cnc-1"], limit=10)
    assert latest["status"] == "CLEARED_ACK" and latest["acked_by"] == "op-7"
    assert latest["clear_time"] is not None
    assert [e["status"] for e in h.alarm_events(sample.ALARM_ID)] == [s for s, _ in LIFECYCLE]


def test_a_record_with_an_impossible_value_is_rejected_while_the_rest_is_written(
    sink: CassandraSink, cassandra: Session, keyspace: str
) -> None:
    good = [sample.telemetry("cnc-1", sample.T0 + i) for i in range(3)]
    far_future = {**sample.telemetry("cnc-1"), "event_time": 2**62}
    huge_key = {**sample.telemetry("cnc-1"), "machine_id": "m" * 70_000}  # over Cassandra's 64 KiB key limit
    batch = records(
        ("factory.telemetry", good[0]),
        ("factory.telemetry", far_future),
        ("factory.telemetry", good[1]),
        ("factory.telemetry", huge_key),
        ("factory.telemetry", good[2]),
    )
    for r in batch:
        sink.add(r)
    result = sink.flush()
    assert sink.pending() == 0
    assert [r.record.offset for r in result.rejected] == [1, 3]
    assert "event_time" in result.rejected[0].reason
    assert "refused" in result.rejected[1].reason and "\n" not in result.rejected[1].reason
    rows = list(
        History(cassandra, keyspace).telemetry(
            ["cnc-1"], since_ms=sample.T0, until_ms=sample.T0 + 10, limit=10
        )
    )
    assert sorted(r["event_id"] for r in rows) == sorted(g["event_id"] for g in good)


def test_table_ttls_follow_the_settings(cassandra: Session, keyspace: str, settings: Settings) -> None:
    migrate(cassandra, keyspace, ttl_s={"telemetry": 3600})

    def ttl_of(table: str) -> int:
        row = cassandra.execute(
            "SELECT default_time_to_live FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
            (keyspace, table),
        ).one()
        return int(row.default_time_to_live)

    assert (ttl_of("telemetry"), ttl_of("alarms_by_machine")) == (3600, 0)
    sink = CassandraSink(settings, keyspace=keyspace)
    sink.setup()
    try:
        write(sink, records(("factory.telemetry", sample.telemetry()), ("factory.production", sample.part())))
    finally:
        sink.close()
    tele_ttl = cassandra.execute(f"SELECT TTL(line_id) FROM {keyspace}.telemetry").one()[0]
    assert 0 < tele_ttl <= 3600
    assert cassandra.execute(f"SELECT TTL(line_id) FROM {keyspace}.parts").one()[0] is None

    report = Migrator(cassandra, keyspace).migrate(replication_options=replication(1), ttl_s={"parts": 7200})
    assert sorted(report.ttl_changes) == [("parts", 0, 7200), ("telemetry", 3600, 0)]
    assert (ttl_of("telemetry"), ttl_of("parts")) == (0, 7200)
