"""Kafka → ``twin sink cassandra`` → Cassandra, on the real servers: counts, replays, outages, DLQ."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from cassandra.cluster import Session

from processors.base import plain
from producers.records import Outgoing
from sinks.cassandra import CassandraSink, Migrator
from sinks.cassandra.schema import replication
from tests.integration.processors.pipeline_helpers import read_raw
from tests.integration.sinks.sink_helpers import history, sink_namespace, stream_through_outage
from twin.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def expected_rows(events: list[Outgoing]) -> dict[str, int]:
    """Rows each table must hold for ``events``, computed from the events themselves."""
    by = Counter(e.topic for e in events)
    alarms = {str(e.record["alarm_id"]) for e in events if e.topic == "twin.alarms"}
    windows = {
        (k["scope"], k["scope_id"], k["window_size_s"], k["window_start"])
        for e in events
        if e.topic == "twin.kpis"
        for k in [plain(e.record)]
    }
    return {
        "telemetry": by["factory.telemetry"],
        "parts": by["factory.production"],
        "machine_states": by["factory.state"],
        "anomalies": by["twin.anomalies"],
        "kpi_windows": len(windows),  # a window re-emitted after late data is one row, updated
        "alarm_events": by["twin.alarms"],
        "alarms_by_machine": len(alarms),
        "alarms_by_state": len(alarms),  # each alarm in exactly one state partition
        "schedule_requests": by["schedule.requests"],
    }


def stored_rows(session: Session, keyspace: str, tables: list[str]) -> dict[str, int]:
    from cassandra.cluster import NoHostAvailable

    for _ in range(60):  # after a restart, this session reconnects within seconds
        try:
            return {
                t: session.execute(f"SELECT COUNT(*) FROM {keyspace}.{t}", timeout=60).one()[0]
                for t in tables
            }
        except NoHostAvailable:
            time.sleep(0.5)
    raise AssertionError("the test's own Cassandra session did not reconnect")


@pytest.fixture
def migrated(cassandra: Session, keyspace: str) -> str:
    Migrator(cassandra, keyspace).migrate(replication_options=replication(1))
    return keyspace


def test_every_event_is_stored_once_and_a_replay_changes_nothing(
    settings: Settings, cassandra: Session, migrated: str
) -> None:
    events = history(1.0)
    want = expected_rows(events)
    assert want["alarm_events"] > 0 and want["anomalies"] > 0 and want["kpi_windows"] > 0
    with sink_namespace(settings) as ns:
        ns.publish(events)
        first = ns.start(CassandraSink(ns.settings, keyspace=migrated))
        ns.wait_committed(first)
        assert stored_rows(cassandra, migrated, list(want)) == want
        assert first.stats.dead_lettered == 0
        ns.stop(first)
        # The same input again from the beginning (a new group): the same rows, no more.
        again = ns.start(CassandraSink(ns.settings, keyspace=migrated))
        ns.wait_committed(again)
        assert again.stats.consumed == first.stats.consumed
        assert stored_rows(cassandra, migrated, list(want)) == want


def test_bad_records_go_to_the_dead_letter_topics_with_the_reason(
    settings: Settings, cassandra: Session, migrated: str
) -> None:
    readings = [e for e in history(0.1) if e.topic == "factory.telemetry"][:30]
    # Valid Avro that Cassandra can never store: a partition key over its 64 KiB limit.
    huge = Outgoing("factory.telemetry", "M1", {**readings[0].record, "event_id": uuid.uuid4()})
    huge.record["machine_id"] = "M" * 70_000
    with sink_namespace(settings) as ns:
        ns.publish(readings[:10])
        ns.publish_raw("factory.telemetry", b"M1", b"\x00\x00\x00")  # too short to be framed Avro
        ns.publish([huge])
        ns.publish(readings[10:])
        runner = ns.start(CassandraSink(ns.settings, keyspace=migrated))
        ns.wait_committed(runner)
        assert stored_rows(cassandra, migrated, ["telemetry"]) == {"telemetry": 30}
        letters = read_raw(ns.settings, ns.name("factory.telemetry.dlq"))
        reasons = sorted(h["twin.dlq.error.reason"] for _, h in letters)
        assert reasons == ["rejected", "truncated"]
        for _, headers in letters:
            assert headers["twin.dlq.source.topic"] == ns.name("factory.telemetry")
            assert headers["twin.dlq.sink"] == "cassandra"
            assert headers["twin.dlq.error.message"]
        assert runner.stats.dead_lettered == 2


def test_a_cassandra_outage_pauses_the_sink_and_loses_nothing(
    settings: Settings, cassandra: Session, migrated: str
) -> None:
    events = history(1.0)
    with sink_namespace(settings) as ns:
        stream_through_outage(ns, CassandraSink(ns.settings, keyspace=migrated), "cassandra", events)
        assert stored_rows(cassandra, migrated, list(expected_rows(events))) == expected_rows(events)


def test_two_runs_with_one_seed_are_both_stored_and_a_retried_run_once(
    settings: Settings, cassandra: Session, migrated: str
) -> None:
    """Runs overwrote each other when event ids came from the seed alone. Now the run id salts
    them: two runs with the same seed (over the same simulated stretch, the worst case) store
    twice the records; the same run retried (same id, seed and start) stores nothing new."""
    from producers.runs import RunId
    from producers.session import simulator_records
    from sim import Simulator, load_factory

    start = 1_764_000_000_000

    def run(run_id: RunId) -> list[Outgoing]:
        sim = Simulator(load_factory(), seed=11, start_time_ms=start)
        return list(simulator_records(sim, 11, start, start + 10 * 60_000, run_id=str(run_id)))

    first, second = RunId.new(), RunId.new(RunId.new().launched_ms + 40_000)
    one, other = run(first), run(second)
    assert not {o.event_id for o in one} & {o.event_id for o in other}
    assert {o.record["source"] for o in one} == {f"sim:{first}:line-1"}
    raw = ("telemetry", "parts", "machine_states")
    with sink_namespace(settings) as ns:
        ns.publish(one)
        runner = ns.start(CassandraSink(ns.settings, keyspace=migrated))
        ns.wait_committed(runner)
        once = stored_rows(cassandra, migrated, list(raw))
        assert once["parts"] > 0 and once["machine_states"] > 0
        ns.publish(other)
        ns.wait_committed(runner)
        assert stored_rows(cassandra, migrated, list(raw)) == {t: 2 * n for t, n in once.items()}
        retried = run(RunId.parse(str(first)))
        assert [o.record for o in retried] == [o.record for o in one]
        ns.publish(retried)
        ns.wait_committed(runner)
        assert stored_rows(cassandra, migrated, list(raw)) == {t: 2 * n for t, n in once.items()}
