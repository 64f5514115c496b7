"""From decoded events to Cassandra writes: keys, timestamps, nulls, and values no table can hold."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from cassandra.query import UNSET_VALUE

from sinks.cassandra import CassandraSink, load_migrations, rows
from tests.unit.sinks import cassandra_samples as sample
from twin.errors import MappingError

SAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "factory.telemetry": sample.telemetry,
    "factory.production": sample.part,
    "factory.state": sample.state,
    "twin.anomalies": sample.anomaly,
    "twin.maintenance": sample.rul_estimate,
    "twin.alarms": lambda: sample.alarm("ACTIVE_UNACK", sample.T0),
    "twin.kpis": sample.kpi,
    "schedule.requests": sample.schedule_request,
    "schedule.plans": sample.schedule_plan,
}


def as_date(wire_day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=wire_day - 2**31)


def test_the_sink_stores_every_history_topic_and_each_has_a_mapper() -> None:
    assert set(CassandraSink.topics) == set(SAMPLES) == set(rows.MAPPERS)


@pytest.mark.parametrize("topic", sorted(SAMPLES))
def test_every_write_binds_exactly_the_markers_of_its_statement(topic: str) -> None:
    for name, params in rows.MAPPERS[topic](SAMPLES[topic]()):
        assert rows.STATEMENTS[name].count("?") == len(params), name


def _table_columns() -> dict[str, set[str]]:
    """Every table's columns after all migrations: CREATE TABLE, then ALTER TABLE ... ADD."""
    text = "\n".join(m.text for m in load_migrations())
    tables: dict[str, set[str]] = {}
    for name, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\)", text, re.S):
        tables[name] = {
            ln.split()[0] for ln in body.strip().splitlines() if not ln.strip().startswith("PRIMARY")
        }
    for name, added in re.findall(r"ALTER TABLE (\w+) ADD IF NOT EXISTS \(([^)]*)\)", text):
        tables[name] |= {column.split()[0] for column in added.split(",")}
    return tables


def _columns(statement: str, params: tuple[Any, ...]) -> dict[str, Any]:
    """The values an INSERT binds, by column name (and ``USING TIMESTAMP`` as ``timestamp``)."""
    m = re.match(r"INSERT INTO \{ks\}\.\w+ \(([^)]*)\)", rows.STATEMENTS[statement])
    assert m is not None
    names = [c.strip() for c in m.group(1).split(",")] + ["timestamp"]
    assert len(names) == len(params)
    return dict(zip(names, params, strict=True))


def test_insert_statements_name_only_columns_the_migrations_create() -> None:
    tables = _table_columns()
    for name, cql in rows.STATEMENTS.items():
        m = re.match(r"INSERT INTO \{ks\}\.(\w+) \(([^)]*)\)", cql)
        if m is None:
            continue
        columns = {c.strip() for c in m.group(2).split(",")}
        assert columns <= tables[m.group(1)], (name, columns - tables[m.group(1)])


def test_telemetry_is_one_row_per_reading_in_its_machine_day_bucket() -> None:
    event = sample.telemetry("press-2", sample.T0 + 5, vibration_rms=2.5, spindle_temp=None)
    [(name, params)] = rows.telemetry(event)
    assert name == "telemetry"
    row = _columns(name, params)
    assert (row["machine_id"], row["event_time"], row["event_id"]) == (
        "press-2",
        sample.T0 + 5,
        uuid.UUID(event["event_id"]),
    )
    assert as_date(row["day"]) == date(2025, 11, 24)
    assert row["timestamp"] == (sample.T0 + 5) * 1000  # USING TIMESTAMP: the event time, in microseconds
    # A dropped sample stays visible: named in the units, absent from the values.
    assert row["channel_values"] == {"vibration_rms": 2.5}
    assert row["channel_units"] == {"vibration_rms": "mm/s", "spindle_temp": "degC"}
    assert (row["source"], row["correlation_id"]) == ("test", event["correlation_id"])


def test_the_same_event_maps_to_the_same_writes() -> None:
    event = sample.alarm("ACTIVE_ACK", sample.T0 + 1000)
    assert rows.alarm(event) == rows.alarm(dict(event))


def test_history_rows_leave_nulls_unwritten_so_they_make_no_tombstones() -> None:
    [(name, params)] = rows.part(sample.part(good=True))
    assert _columns(name, params)["scrap_reason"] is UNSET_VALUE  # of a good part


def test_an_alarm_event_updates_its_latest_state_and_leaves_the_other_state_partitions() -> None:
    event = sample.alarm("ACTIVE_ACK", sample.T0 + 60_000)
    writes = dict(rows.alarm(event))
    assert set(writes) == {"alarm_by_machine", "alarm_by_state", "alarm_state_delete", "alarm_event"}
    ts, others, start, alarm_id = writes["alarm_state_delete"]
    assert set(others) == {"ACTIVE_UNACK", "CLEARED_UNACK", "CLEARED_ACK"}
    assert (start, alarm_id) == (sample.T0, uuid.UUID(sample.ALARM_ID))
    assert writes["alarm_by_state"][0] == "ACTIVE_ACK"
    # Every write of the event carries the same timestamp, so the delete never hides its own insert.
    assert {writes[k][-1] for k in ("alarm_by_machine", "alarm_by_state", "alarm_event")} == {ts}
    # Latest-state rows overwrite nulls (clear_time is still null), the event log leaves them out.
    assert None in writes["alarm_by_machine"]


def test_a_later_lifecycle_step_in_the_same_millisecond_still_wins() -> None:
    t = sample.T0 + 5000
    stamps = [dict(rows.alarm(sample.alarm(s, t)))["alarm_state_delete"][0] for s in rows.ALARM_STATUSES]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4


def test_the_lifecycle_version_orders_an_alarms_rows_whatever_the_clocks() -> None:
    """A raise stamped 2 h ahead (a machine's clock), then an ACK stamped now (the operator's): the
    ACK is version 2, so its rows carry the later write timestamp and win."""
    raised = {**sample.alarm("ACTIVE_UNACK", sample.T0 + 7_200_000), "version": 1}
    acked = {**sample.alarm("ACTIVE_ACK", sample.T0 + 60_000), "version": 2}
    stamps = [dict(rows.alarm(r))["alarm_state_delete"][0] for r in (raised, acked)]
    assert stamps[0] < stamps[1]
    event = dict(rows.alarm(acked))["alarm_event"]
    assert event[-2:] == (2, stamps[1])  # the event log keeps the version: listed in lifecycle order
    with pytest.raises(MappingError, match="alarm version"):
        rows.alarm({**acked, "version": rows.MAX_ALARM_VERSION})


def test_kpi_windows_are_keyed_by_the_window_not_the_event() -> None:
    a = dict(rows.kpi_window(sample.kpi(oee=0.5)))["kpi_window"]
    b = dict(rows.kpi_window(sample.kpi(oee=0.7)))["kpi_window"]
    assert a[:5] == b[:5] == ("LINE", sample.LINE, 60, a[3], sample.T0)
    assert a[7] != b[7]  # different event ids, same row


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event_time": 2**62}, "event_time"),
        ({"event_time": -5}, "event_time"),
        ({"event_id": "not-a-uuid"}, "event_id"),
    ],
)
def test_values_no_table_can_hold_are_mapping_errors(change: dict[str, object], message: str) -> None:
    event = {**sample.telemetry(), **change}
    with pytest.raises(MappingError, match=message):
        rows.telemetry(event)


def test_a_cleared_alarm_keeps_the_value_that_raised_it_its_peak_and_its_clearing_value() -> None:
    writes = dict(rows.alarm(sample.alarm("CLEARED_UNACK", sample.T0 + 90_000)))
    for statement in ("alarm_by_machine", "alarm_by_state", "alarm_event"):
        row = _columns(statement, writes[statement])
        assert (row["value"], row["peak_value"], row["clear_value"]) == (7.5, 9.1, 2.28), statement
        assert row["message"] == "vibration above 7 mm/s"


def test_an_active_alarm_has_no_clearing_value_yet() -> None:
    writes = dict(rows.alarm(sample.alarm("ACTIVE_ACK", sample.T0 + 60_000)))
    # The latest-state row overwrites an older clear value with null (an alarm raised again) ...
    assert _columns("alarm_by_machine", writes["alarm_by_machine"])["clear_value"] is None
    # ... the audit trail leaves it unwritten: no tombstone.
    assert _columns("alarm_event", writes["alarm_event"])["clear_value"] is UNSET_VALUE
