"""How the Elasticsearch sink reads bulk responses: written, stale, retried or dead-lettered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ConnectionError as EsConnectionError

from sinks.elasticsearch import ElasticsearchSink
from sinks.elasticsearch.bulk import Outcome, classify
from tests.unit.sinks import es_samples as s
from tests.unit.sinks.es_fake import FakeClient, api_error
from twin.errors import BackpressureError, SinkError
from twin.settings import Settings

CAPTURED: dict[str, Any] = json.loads((Path(__file__).parent / "es_bulk_responses.json").read_text())


def items(name: str) -> list[dict[str, Any]]:
    return list(CAPTURED[name]["items"])


def sink(client: FakeClient, **kwargs: Any) -> ElasticsearchSink:
    return ElasticsearchSink(Settings(), client=client, **kwargs)  # type: ignore[arg-type]


def ok(n: int = 1) -> list[dict[str, Any]]:
    return [{"index": {"status": 201}}] * n


def test_item_outcomes_from_captured_responses() -> None:
    created, parsing, strict, _current, stale = items("partial")
    assert classify(created) == (Outcome.WRITTEN, "")
    assert classify(items("replaced")[0]) == (Outcome.WRITTEN, "")
    outcome, reason = classify(parsing)
    assert outcome is Outcome.REJECT
    assert reason.startswith("document_parsing_exception: [1:53] failed to parse field [value]")
    assert "caused by number_format_exception" in reason and "\n" not in reason
    assert classify(strict)[0] is Outcome.REJECT
    assert classify(stale, versioned=True)[0] is Outcome.STALE
    assert classify(stale, versioned=False)[0] is Outcome.REJECT
    for name in ("overloaded", "shard_unavailable", "blocked", "no_index"):
        assert classify(items(name)[0])[0] is Outcome.RETRY, name


def test_partial_failure_writes_the_rest_and_dead_letters_the_refused_with_its_reason() -> None:
    good, bad, state = (
        s.sink_record("twin.alarms", s.alarm(alarm_key="good"), 0),
        s.sink_record("twin.alarms", s.alarm(alarm_key="bad"), 1),
        s.sink_record("factory.state", s.state_change(), 2),
    )
    _created, parsing, *_ = items("partial")
    # alarm: daily + current items each; the bad alarm fails in both indices, as it would.
    client = FakeClient({"errors": True, "items": [*ok(2), parsing, parsing, *ok(1)]})
    es = sink(client)
    for r in (good, bad, state):
        es.add(r)
    result = es.flush()
    assert result.written == 2
    assert [r.record for r in result.rejected] == [bad]
    assert result.rejected[0].reason.startswith("document_parsing_exception")
    assert es.pending() == 0


def test_a_stale_current_alarm_is_an_expected_no_op() -> None:
    *_, stale = items("partial")
    client = FakeClient({"errors": True, "items": [*ok(1), stale]})
    es = sink(client)
    es.add(s.sink_record("twin.alarms", s.alarm("ACTIVE_UNACK")))
    result = es.flush()
    assert result.written == 1 and result.rejected == []


@pytest.mark.parametrize("name", ["overloaded", "shard_unavailable", "blocked"])
def test_overloaded_or_blocked_items_are_kept_and_written_on_the_next_flush(name: str) -> None:
    records = [s.sink_record("factory.state", s.state_change(at=s.T0 + i), i) for i in range(3)]
    parsing = items("partial")[1]
    client = FakeClient({"errors": True, "items": [*ok(1), items(name)[0], parsing]})
    es = sink(client)
    for r in records:
        es.add(r)
    with pytest.raises(BackpressureError) as caught:
        es.flush()
    assert caught.value.retry_after_s == 0.0
    assert es.pending() == 1
    result = es.flush()  # the fake now accepts everything
    assert client.requests[1][0]["index"]["_id"] == records[1].value["event_id"]
    # The first attempt's written and refused records are reported once, by the flush that succeeded.
    assert result.written == 2 and [r.record for r in result.rejected] == [records[2]]
    assert result.retries == 1
    assert es.pending() == 0


def test_unreachable_elasticsearch_keeps_every_record() -> None:
    records = [s.sink_record("factory.state", s.state_change(at=s.T0 + i), i) for i in range(5)]
    client = FakeClient({"errors": False, "items": ok(2)}, EsConnectionError("connection refused"))
    es = sink(client, chunk_docs=2)
    for r in records:
        es.add(r)
    with pytest.raises(BackpressureError, match="unreachable"):
        es.flush()
    assert es.pending() == 3  # the first chunk was written; nothing after the failure was sent
    result = es.flush()
    assert result.written == 5 and result.rejected == []
    sent = [op["index"]["_id"] for req in client.requests for op in req if "index" in op]
    assert sent[-3:] == [r.value["event_id"] for r in records[2:]]


def test_a_whole_request_refused_as_too_many_honours_retry_after() -> None:
    client = FakeClient(api_error(429, {"Retry-After": "7"}, "circuit_breaking_exception"))
    es = sink(client)
    es.add(s.sink_record("twin.anomalies", s.anomaly()))
    with pytest.raises(BackpressureError) as caught:
        es.flush()
    assert caught.value.retry_after_s == 7.0
    assert "circuit_breaking_exception" in caught.value.reason
    assert es.pending() == 1


def test_a_server_error_for_the_whole_request_is_retried() -> None:
    client = FakeClient(api_error(503))
    es = sink(client)
    es.add(s.sink_record("twin.anomalies", s.anomaly()))
    with pytest.raises(BackpressureError):
        es.flush()
    assert es.flush().written == 1


def test_a_request_too_large_is_a_configuration_error() -> None:
    es = sink(FakeClient(api_error(413)))
    es.add(s.sink_record("twin.anomalies", s.anomaly()))
    with pytest.raises(SinkError, match="BATCH_MAX"):
        es.flush()


def test_one_flush_sends_the_buffer_in_chunks() -> None:
    client = FakeClient()
    es = sink(client, chunk_docs=2)
    for i in range(5):
        es.add(s.sink_record("factory.state", s.state_change(at=s.T0 + i), i))
    assert es.flush().written == 5
    assert [len(r) // 2 for r in client.requests] == [2, 2, 1]
