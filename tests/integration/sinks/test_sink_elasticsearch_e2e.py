"""Kafka → ``twin sink elasticsearch`` → Elasticsearch, on the real servers: counts, replays, outages."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from sinks.elasticsearch import ElasticsearchSink
from tests.integration.processors.pipeline_helpers import read_raw
from tests.integration.sinks.sink_helpers import (
    count_by_topic,
    history,
    sink_namespace,
    stream_through_outage,
)
from twin.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def stored(es: Elasticsearch, prefix: str) -> dict[str, int]:
    es.indices.refresh(index=f"{prefix}-*")
    out = {}
    for kind in ("alarms", "anomalies", "events"):
        out[kind] = int(es.count(index=f"{prefix}-{kind}-*", allow_no_indices=True)["count"])
    return out


def expected(counts: dict[str, int]) -> dict[str, int]:
    return {
        "alarms": counts.get("twin.alarms", 0),
        "anomalies": counts.get("twin.anomalies", 0),
        "events": counts.get("factory.state", 0)
        + counts.get("schedule.requests", 0)
        + counts.get("schedule.plans", 0),
    }


def test_every_event_is_indexed_once_and_a_replay_changes_nothing(
    settings: Settings, es: Elasticsearch, index_prefix: str
) -> None:
    events = history(1.0)
    want = expected(count_by_topic(events))
    assert want["alarms"] > 0 and want["anomalies"] > 0 and want["events"] > 0
    with sink_namespace(settings) as ns:
        ns.publish(events)
        first = ns.start(ElasticsearchSink(ns.settings, index_prefix=index_prefix))
        ns.wait_committed(first)
        assert stored(es, index_prefix) == want
        assert first.stats.dead_lettered == 0
        ns.stop(first)
        # The same input again, from the beginning (a new group): the same documents, no more.
        again = ns.start(ElasticsearchSink(ns.settings, index_prefix=index_prefix))
        ns.wait_committed(again)
        assert again.stats.written == first.stats.written
        assert stored(es, index_prefix) == want


def test_undecodable_records_go_to_the_dead_letter_topic_with_the_reason(
    settings: Settings, es: Elasticsearch, index_prefix: str
) -> None:
    events = [e for e in history(0.25) if e.topic == "factory.state"][:20]
    with sink_namespace(settings) as ns:
        ns.publish(events[:10])
        ns.publish_raw("factory.state", b"M1", b"not avro at all")
        ns.publish(events[10:])
        runner = ns.start(ElasticsearchSink(ns.settings, index_prefix=index_prefix))
        ns.wait_committed(runner)
        assert stored(es, index_prefix)["events"] == 20
        letters = read_raw(ns.settings, ns.name("factory.state.dlq"))
        assert [value for value, _ in letters] == [b"not avro at all"]
        headers = letters[0][1]
        assert headers["twin.dlq.source.topic"] == ns.name("factory.state")
        assert headers["twin.dlq.error.reason"] == "magic"
        assert headers["twin.dlq.sink"] == "elasticsearch"
        assert runner.stats.dead_lettered == 1


def test_an_elasticsearch_outage_pauses_the_sink_and_loses_nothing(
    settings: Settings, es: Elasticsearch, index_prefix: str
) -> None:
    events = history(1.0)
    with sink_namespace(settings) as ns:
        sink = ElasticsearchSink(ns.settings, index_prefix=index_prefix)
        stream_through_outage(ns, sink, "elasticsearch", events)
        assert stored(es, index_prefix) == expected(count_by_topic(events))
