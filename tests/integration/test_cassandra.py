"""The local Cassandra is a real Cassandra 5.0: DDL, writes and reads through cassandra-driver."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from cassandra.cluster import Session


def test_server_is_cassandra_5(cassandra: Session) -> None:
    row = cassandra.execute("SELECT release_version FROM system.local").one()
    assert row.release_version.startswith("5.0.")


def test_create_insert_select_by_partition_newest_first(cassandra: Session, keyspace: str) -> None:
    cassandra.execute(
        f"""CREATE TABLE {keyspace}.readings (
              machine_id text, day date, event_time timestamp, event_id uuid, value double,
              PRIMARY KEY ((machine_id, day), event_time, event_id)
            ) WITH CLUSTERING ORDER BY (event_time DESC, event_id ASC)"""
    )
    insert = cassandra.prepare(
        f"INSERT INTO {keyspace}.readings (machine_id, day, event_time, event_id, value) "
        "VALUES (?, ?, ?, ?, ?)"
    )
    start = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    for i in range(20):
        t = start + timedelta(seconds=i)
        cassandra.execute(insert, ("cnc-1", t.date(), t, uuid.uuid4(), float(i)))
    # Idempotent by key: writing the same row again does not add a row.
    dup_id = uuid.uuid4()
    for _ in range(3):
        cassandra.execute(insert, ("cnc-2", start.date(), start, dup_id, 1.0))

    rows = list(
        cassandra.execute(
            f"SELECT event_time, value FROM {keyspace}.readings WHERE machine_id = %s AND day = %s",
            ("cnc-1", start.date()),
        )
    )
    assert [r.value for r in rows] == [float(i) for i in reversed(range(20))]
    dup = cassandra.execute(
        f"SELECT count(*) FROM {keyspace}.readings WHERE machine_id = %s AND day = %s",
        ("cnc-2", start.date()),
    ).one()
    assert dup.count == 1
