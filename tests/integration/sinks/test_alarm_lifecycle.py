"""An operator's ACK is kept whatever the clocks: the raise came from a machine whose clock runs
ahead, the ACK carries the operator's (earlier) clock. Both sinks on the real servers, then the
three places an operator looks: ``twin query alarms``, ``twin search --active`` and the gateway's
history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from cassandra.cluster import Session
from elasticsearch import Elasticsearch

from processors.base import derived_id
from producers.records import Outgoing
from sinks.cassandra import CassandraSink, Migrator
from sinks.cassandra.schema import replication
from sinks.elasticsearch import ElasticsearchSink
from tests.integration.sinks.sink_helpers import sink_namespace
from twin.settings import Settings
from xr_gateway.history import CassandraHistory

pytestmark = [pytest.mark.integration]


def alarm(status: str, event_time: int, version: int, start: int, machine: str) -> Outgoing:
    alarm_id = derived_id("alarm", machine, "OverTemperature", start)
    record = {
        "event_id": derived_id("alarm-event", alarm_id, status), "event_time": event_time,
        "source": "processor:alarms", "correlation_id": "c1", "alarm_id": alarm_id, "line_id": "line-1",
        "machine_id": machine, "alarm_type": "OverTemperature", "rule_id": "over-temp", "severity": "MAJOR",
        "status": status, "start_time": start, "end_time": None,
        "ack_time": event_time if status == "ACTIVE_ACK" else None,
        "acked_by": "op" if status == "ACTIVE_ACK" else None, "clear_time": None, "cleared_by": None,
        "value": 91.0, "peak_value": 91.0, "clear_value": None, "message": "hot", "details": {},
        "version": version,
    }  # fmt: skip
    return Outgoing("twin.alarms", machine, record)


def twin(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "cli", *args], env={**os.environ, **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_an_ack_stamped_before_a_future_raise_shows_everywhere(
    settings: Settings, cassandra: Session, keyspace: str, es: Elasticsearch, index_prefix: str
) -> None:
    Migrator(cassandra, keyspace).migrate(replication_options=replication(1))
    machine = f"oven-{uuid.uuid4().hex[:6]}"
    now = int(time.time() * 1000)
    ahead = now + 45_000  # the machine's clock: 45 s ahead, within the processors' allowed skew
    raised = alarm("ACTIVE_UNACK", ahead, 1, ahead, machine)
    acked = alarm("ACTIVE_ACK", now, 2, ahead, machine)  # the operator's clock
    with sink_namespace(settings) as ns:
        ns.publish([raised, acked])
        for sink in (
            CassandraSink(ns.settings, keyspace=keyspace),
            ElasticsearchSink(ns.settings, index_prefix=index_prefix),
        ):
            ns.wait_committed(ns.start(sink))
    env = {"TWIN_CASSANDRA__KEYSPACE": keyspace, "TWIN_ELASTICSEARCH__INDEX_PREFIX": index_prefix}

    rows = [
        json.loads(x)
        for x in twin("query", "alarms", "--machine", machine, "--format", "json", env=env).splitlines()
    ]
    assert [(r["status"], r["acked_by"]) for r in rows] == [("ACTIVE_ACK", "op")]
    es.indices.refresh(index=f"{index_prefix}-*")
    hits = [
        json.loads(x)
        for x in twin("search", "--active", "--machine", machine, "--format", "json", env=env).splitlines()
    ]
    assert [h["state"] for h in hits] == ["MAJOR ACTIVE_ACK"], hits

    history = CassandraHistory(cassandra, keyspace)
    (latest,) = history.recent_alarms(machine_id=machine, line_id=None, open_only=False, limit=10)
    assert (latest["status"], latest["version"]) == ("ACTIVE_ACK", 2)
    from sinks.cassandra.queries import History

    events = History(cassandra, keyspace).alarm_events(str(raised.record["alarm_id"]))
    assert [e["status"] for e in events] == ["ACTIVE_UNACK", "ACTIVE_ACK"]  # lifecycle order, not clock order
