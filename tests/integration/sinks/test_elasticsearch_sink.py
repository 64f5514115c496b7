"""The Elasticsearch sink and ``twin search`` against the real local Elasticsearch."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import typer
from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from cli.search import search as search_command
from sinks.elasticsearch import ElasticsearchSink, search, templates
from tests.conftest import unique
from tests.unit.sinks import es_samples as s
from twin.errors import BackpressureError
from twin.settings import Settings


@pytest.fixture
def prefix(es: Elasticsearch, request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique index prefix; its indices and templates are deleted afterwards."""
    name = unique("test", request, sep="-")
    yield name
    for index in es.indices.get_alias(index=f"{name}-*", expand_wildcards="all").body:
        es.options(ignore_status=404).indices.delete(index=index)
    for template in templates(name):
        es.options(ignore_status=404).indices.delete_index_template(name=template)


def make_sink(settings: Settings, prefix: str, retention_days: int = 3650) -> ElasticsearchSink:
    # The samples are dated 2025-11-24: a long retention keeps their indices through setup().
    scoped = settings.model_copy(deep=True)
    scoped.elasticsearch.retention_days = retention_days
    return ElasticsearchSink(scoped, index_prefix=prefix)


def count(es: Elasticsearch, index: str) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
    return int(es.count(index=index, ignore_unavailable=True, allow_no_indices=True)["count"])


def test_setup_twice_installs_the_same_templates(settings: Settings, es: Elasticsearch, prefix: str) -> None:
    sink = make_sink(settings, prefix)
    sink.setup()
    first = es.indices.get_index_template(name=f"{prefix}-*").body["index_templates"]
    sink.setup()
    second = es.indices.get_index_template(name=f"{prefix}-*").body["index_templates"]
    assert sorted(t["name"] for t in first) == sorted(
        [f"{prefix}-alarms", f"{prefix}-anomalies", f"{prefix}-events", f"{prefix}-current-alarms"]
    )
    assert sorted(first, key=lambda t: t["name"]) == sorted(second, key=lambda t: t["name"])
    for record in s.every_kind():
        sink.add(record)
    assert sink.flush().written == 5
    mapping = es.indices.get_mapping(index=f"{prefix}-alarms-2025.11.24").body
    props = mapping[f"{prefix}-alarms-2025.11.24"]["mappings"]
    assert props["dynamic"] == "strict"
    assert props["properties"]["event_time"]["type"] == "date"
    assert props["properties"]["machine_id"]["type"] == "keyword"
    assert props["properties"]["message"]["fields"]["keyword"]["type"] == "keyword"
    sink.close()


def test_every_kind_is_indexed_and_found_by_search(
    settings: Settings, es: Elasticsearch, prefix: str
) -> None:
    sink = make_sink(settings, prefix)
    sink.setup()
    for record in s.every_kind():
        sink.add(record)
    sink.add(
        s.sink_record("factory.state", s.state_change(at=s.T0 + 3_600_000, machine="press-2", state="IDLE"))
    )
    assert sink.flush().written == 6
    es.indices.refresh(index=f"{prefix}-*")

    def found(query: str, **kw: object) -> list[tuple[str, object]]:
        return [(r["kind"], r["what"]) for r in search(es, query, index_prefix=prefix, **kw)]  # type: ignore[arg-type]

    assert found("pressure low") == [("alarms", "LowPressure")]
    assert found("jam DOWN") == [("events", "state_change")]  # all words must match
    assert found("hst-multivariate") == [("anomalies", "hst-multivariate")]
    assert found("qaoa") == [("events", "schedule_plan")]
    assert found("MACHINE_DOWN") == [("events", "schedule_request")]
    # Newest first; the machine filter also finds a plan that assigns work to the machine.
    newest, *same_time = found("", machine="press-2")
    assert newest == ("events", "state_change")
    assert sorted(same_time) == [("alarms", "LowPressure"), ("anomalies", "hst-multivariate")]
    assert found("", machine="weld-2") == [("events", "schedule_plan")]
    assert sorted(found("", kinds=["alarms", "anomalies"], line="line-1")) == [
        ("alarms", "LowPressure"),
        ("anomalies", "hst-multivariate"),
    ]
    later = datetime.fromtimestamp(s.T0 / 1000, UTC) + timedelta(minutes=30)
    assert found("", since=later) == [("events", "state_change")]
    assert len(found("", until=later)) == 5
    assert found("", kinds=["current-alarms"], active_only=True) == [("current-alarms", "LowPressure")]
    assert found('"pressure" AND ((( -') == []  # odd syntax is never an error
    assert found("nothing-like-this") == []
    sink.close()


def test_the_same_records_flushed_twice_leave_the_same_documents(
    settings: Settings, es: Elasticsearch, prefix: str
) -> None:
    for _ in range(2):  # a redelivery after a crash: a new sink, the same records
        sink = make_sink(settings, prefix)
        sink.setup()
        for record in s.every_kind():
            sink.add(record)
        assert sink.flush().written == 5
        sink.close()
    assert count(es, f"{prefix}-*-2025.11.24") == 5
    assert count(es, f"{prefix}-current-alarms") == 1


def test_a_document_that_conflicts_with_the_mapping_is_rejected_and_the_rest_written(
    settings: Settings, es: Elasticsearch, prefix: str
) -> None:
    sink = make_sink(settings, prefix)
    sink.setup()
    bad_value = s.alarm(alarm_key="bad")
    bad_value["value"] = "very high"  # not a double
    bad = s.sink_record("twin.alarms", bad_value, 99)
    records = [*s.every_kind()[:3], bad, *s.every_kind()[3:]]
    for record in records:
        sink.add(record)
    result = sink.flush()
    assert result.written == 5
    assert [r.record for r in result.rejected] == [bad]
    assert result.rejected[0].reason.startswith("document_parsing_exception")
    assert "failed to parse field [value] of type [double]" in result.rejected[0].reason
    assert count(es, f"{prefix}-*-2025.11.24") == 5
    assert (
        es.options(ignore_status=404).get(index=f"{prefix}-alarms-2025.11.24", id=bad_value["event_id"])[
            "found"
        ]
        is False
    )
    sink.close()


def test_retention_deletes_daily_indices_older_than_retention_days(
    settings: Settings, es: Elasticsearch, prefix: str
) -> None:
    today = datetime.now(UTC).date()
    old = f"{prefix}-alarms-{(today - timedelta(days=4)).strftime('%Y.%m.%d')}"
    edge = f"{prefix}-events-{(today - timedelta(days=3)).strftime('%Y.%m.%d')}"
    fresh = f"{prefix}-anomalies-{today.strftime('%Y.%m.%d')}"
    unrelated = f"{prefix}-notes-2001.01.01"  # not one of ours: never touched
    for name in (old, edge, fresh, unrelated):
        es.indices.create(index=name)
    sink = make_sink(settings, prefix, retention_days=3)
    sink.setup()
    left = set(es.indices.get_alias(index=f"{prefix}-*").body)
    assert old not in left
    assert {edge, fresh, unrelated} <= left
    # A long-cleared alarm leaves the current-alarms index; an active one of the same age stays.
    long_ago = int((datetime.now(UTC) - timedelta(days=10)).timestamp() * 1000)
    sink.add(s.sink_record("twin.alarms", s.alarm("CLEARED_ACK", at=long_ago, alarm_key="old")))
    sink.add(s.sink_record("twin.alarms", s.alarm("ACTIVE_UNACK", at=long_ago, alarm_key="stuck")))
    assert sink.flush().written == 2
    es.indices.refresh(index=f"{prefix}-current-alarms")
    sink.setup()  # a restart, or the hourly pass
    left = set(es.indices.get_alias(index=f"{prefix}-*").body)
    assert not any(name.startswith(f"{prefix}-alarms-") for name in left)  # 10 days old: gone too
    es.indices.refresh(index=f"{prefix}-current-alarms")
    current = es.search(index=f"{prefix}-current-alarms", query={"match_all": {}})["hits"]["hits"]
    assert [h["_source"]["status"] for h in current] == ["ACTIVE_UNACK"]
    sink.close()


def test_current_alarm_ends_in_its_latest_state_whatever_the_delivery_order(
    settings: Settings, es: Elasticsearch, prefix: str
) -> None:
    lifecycle = [
        s.alarm("ACTIVE_UNACK", at=s.T0, severity="MINOR"),
        s.alarm("ACTIVE_UNACK", at=s.T0 + 60_000, severity="CRITICAL"),  # escalated
        s.alarm("ACTIVE_ACK", at=s.T0 + 60_000, severity="CRITICAL"),  # acked in the same ms
        s.alarm("CLEARED_ACK", at=s.T0 + 120_000, severity="CRITICAL"),
    ]
    sink = make_sink(settings, prefix)
    sink.setup()
    order = list(range(len(lifecycle)))
    for attempt in range(4):
        random.Random(attempt).shuffle(order)
        for i in order:  # one flush per event: every arrival order hits the index separately
            sink.add(s.sink_record("twin.alarms", lifecycle[i], i))
            result = sink.flush()
            assert result.written == 1 and result.rejected == []
        es.indices.refresh(index=f"{prefix}-current-alarms")
        [hit] = es.search(index=f"{prefix}-current-alarms", query={"match_all": {}})["hits"]["hits"]
        assert hit["_id"] == lifecycle[0]["alarm_id"]
        assert hit["_source"]["status"] == "CLEARED_ACK", order
        assert hit["_source"]["event_id"] == lifecycle[-1]["event_id"]
    assert count(es, f"{prefix}-alarms-*") == 4  # the history keeps every lifecycle event
    sink.close()


def test_elasticsearch_unreachable_is_backpressure_and_nothing_is_dropped(
    settings: Settings, prefix: str
) -> None:
    down = settings.model_copy(deep=True)
    down.elasticsearch.url = "http://127.0.0.1:9"  # discard port: connection refused at once
    sink = ElasticsearchSink(down, index_prefix=prefix)
    with pytest.raises(BackpressureError, match="unreachable"):
        sink.setup()
    for record in s.every_kind():
        sink.add(record)
    with pytest.raises(BackpressureError):
        sink.flush()
    assert sink.pending() == 5
    sink.close()


def test_twin_search_prints_matches_or_says_there_are_none(settings: Settings, prefix: str) -> None:
    sink = make_sink(settings, prefix)
    sink.setup()
    for record in s.every_kind():
        sink.add(record)
    sink.flush()
    sink._client.indices.refresh(index=f"{prefix}-*")
    sink.close()
    app = typer.Typer()
    app.command()(search_command)
    runner = CliRunner()

    result = runner.invoke(app, ["jam", "--index-prefix", prefix, "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "time,kind,machine_id,line_id,what,state,message,details,id,correlation_id"
    assert lines[1].startswith("2025-11-24T16:00:00.000+00:00,events,weld-1,line-1,state_change,DOWN,")
    assert len(lines) == 2

    result = runner.invoke(app, ["pressure", "--in", "events", "--index-prefix", prefix])
    assert result.exit_code == 0 and result.output.strip() == "no matches"

    result = runner.invoke(app, ["x", "--since", "yesterday-ish", "--index-prefix", prefix])
    assert result.exit_code != 0
    assert "--since 'yesterday-ish'" in str(result.exception)


class _Proxy:
    """A TCP relay to Elasticsearch that can be cut and restored: an outage without touching the
    shared server."""

    def __init__(self, target: tuple[str, int]) -> None:
        import socket

        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.up = True
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def cut(self) -> None:
        """Refuse new connections and drop the open ones, as a stopped server does."""
        self.up = False
        for c in self.conns:
            c.close()
        self.conns.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.server.close()


def test_the_sink_holds_records_through_an_outage_and_writes_them_once_back(
    settings: Settings, es: Elasticsearch, prefix: str
) -> None:
    from urllib.parse import urlsplit

    url = urlsplit(settings.elasticsearch.url)
    proxy = _Proxy((url.hostname or "127.0.0.1", url.port or 9200))
    relayed = settings.model_copy(deep=True)
    relayed.elasticsearch.url = f"http://127.0.0.1:{proxy.port}"
    relayed.elasticsearch.request_timeout_s = 5.0
    relayed.elasticsearch.retention_days = 3650
    sink = ElasticsearchSink(relayed, index_prefix=prefix)
    try:
        sink.setup()
        proxy.cut()
        for record in s.every_kind():
            sink.add(record)
        for _ in range(2):  # the runner retries while paused; nothing is lost meanwhile
            with pytest.raises(BackpressureError):
                sink.flush()
            assert sink.pending() == 5
        proxy.restore()
        result = sink.flush()  # the same client object reconnects
        assert result.written == 5 and result.rejected == []
        assert sink.pending() == 0
    finally:
        sink.close()
        proxy.close()
    assert count(es, f"{prefix}-*-2025.11.24") == 5
