"""Documents the Elasticsearch sink builds from real-schema records: fields, index names, versions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import load_schema
from sinks.base import SinkRecord
from sinks.elasticsearch import ElasticsearchSink
from sinks.elasticsearch.documents import BUILDERS, alarm_version
from sinks.elasticsearch.mappings import PROPERTIES, daily_index_re
from tests.avro_strategies import records
from tests.unit.sinks import es_samples as s
from tests.unit.sinks.es_fake import FakeClient
from twin.settings import Settings
from twin.topics import topic as catalog_topic


def sink(client: FakeClient | None = None, prefix: str = "twin") -> ElasticsearchSink:
    return ElasticsearchSink(Settings(), index_prefix=prefix, client=client or FakeClient())  # type: ignore[arg-type]


def unmapped(doc: dict[str, Any], properties: dict[str, Any], path: str = "") -> list[str]:
    """Fields of ``doc`` a strict mapping would refuse."""
    bad: list[str] = []
    for key, value in doc.items():
        field = properties.get(key)
        if field is None:
            bad.append(path + key)
        elif "properties" in field:
            for item in value if isinstance(value, list) else [value]:
                bad += unmapped(item, field["properties"], f"{path}{key}.")
    return bad


@pytest.mark.parametrize("topic", sorted(BUILDERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_valid_record_becomes_a_document_its_strict_mapping_accepts(
    topic: str, data: st.DataObject
) -> None:
    parsed = load_schema(catalog_topic(topic).value_schema).parsed
    value = data.draw(records(parsed))
    kind, build = BUILDERS[topic]
    doc = build(value)
    assert unmapped(doc, PROPERTIES[kind]) == []
    assert doc["event_id"] == value["event_id"] and doc["event_time"] == value["event_time"]
    json.dumps(doc)  # the client can serialize it


def test_each_topic_goes_to_its_kind_daily_index_with_event_id_as_id() -> None:
    client = FakeClient()
    es = sink(client)
    for record in s.every_kind():
        es.add(record)
    assert es.flush().written == 5
    [ops] = client.requests
    actions = [op["index"] for op in ops if "index" in op]
    names = [a["_index"] for a in actions]
    assert names == [
        "twin-alarms-2025.11.24",
        "twin-current-alarms",
        "twin-anomalies-2025.11.24",
        "twin-events-2025.11.24",
        "twin-events-2025.11.24",
        "twin-events-2025.11.24",
    ]
    daily = [a for a in actions if a["_index"] != "twin-current-alarms"]
    assert [a["_id"] for a in daily] == [r.value["event_id"] for r in s.every_kind()]
    assert all(daily_index_re("twin").match(a["_index"]) for a in daily)


def test_the_day_is_the_utc_day_of_the_event_time() -> None:
    midnight = 1_764_028_800_000  # 2025-11-25T00:00:00Z
    client = FakeClient()
    es = sink(client)
    es.add(s.sink_record("factory.state", s.state_change(at=midnight - 1)))
    es.add(s.sink_record("factory.state", s.state_change(at=midnight)))
    es.flush()
    names = [op["index"]["_index"] for op in client.requests[0] if "index" in op]
    assert names == ["twin-events-2025.11.24", "twin-events-2025.11.25"]


def test_current_alarm_version_grows_along_the_lifecycle_even_within_one_millisecond() -> None:
    path = ["ACTIVE_UNACK", "ACTIVE_ACK", "CLEARED_UNACK", "CLEARED_ACK"]
    same_ms = [alarm_version(s.alarm(status)) for status in path]
    assert same_ms == sorted(same_ms) and len(set(same_ms)) == 4
    # A later event outranks any status of an earlier one.
    assert alarm_version(s.alarm("ACTIVE_UNACK", at=s.T0 + 1)) > alarm_version(s.alarm("CLEARED_ACK"))


def test_current_alarm_is_keyed_by_alarm_id_with_external_gte_versioning() -> None:
    client = FakeClient()
    es = sink(client)
    value = s.alarm("ACTIVE_ACK")
    es.add(s.sink_record("twin.alarms", value))
    es.flush()
    action = client.requests[0][2]["index"]
    assert action["_id"] == value["alarm_id"]
    assert action["version_type"] == "external_gte"
    assert action["version"] == alarm_version(value)


def test_events_read_as_sentences_and_plans_are_found_by_every_machine_they_use() -> None:
    state = BUILDERS["factory.state"][1](s.state_change())
    assert state["message"] == "weld-1 RUNNING -> DOWN: wire feed jam"
    assert state["event_type"] == "state_change" and state["state"] == "DOWN"
    first = BUILDERS["factory.state"][1](s.state_change(previous=None, state="IDLE"))
    assert first["message"] == "weld-1 IDLE: wire feed jam"
    request = BUILDERS["schedule.requests"][1](s.schedule_request())
    assert (
        request["message"] == "re-plan line-1 requested: MACHINE_DOWN on weld-1, 2 jobs, unavailable: weld-1"
    )
    plan = BUILDERS["schedule.plans"][1](s.schedule_plan())
    assert plan["machine_id"] == ["weld-2"] and plan["assignments"] == 2
    anomaly = BUILDERS["twin.anomalies"][1](s.anomaly())
    assert anomaly["signals"] == ["vibration_rms", "temperature"]
    assert "score 3.25 over 2.5" in anomaly["message"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event_time": "yesterday"}, "event_time is str"),
        ({"event_id": None}, "no event_id"),
        ({"event_time": 10**18}, "outside the calendar"),
    ],
)
def test_a_record_that_cannot_become_a_document_is_rejected_without_a_request(
    change: dict[str, Any], reason: str
) -> None:
    client = FakeClient()
    es = sink(client)
    bad = SinkRecord("factory.state", 0, 7, None, {**s.state_change(), **change})
    es.add(bad)
    result = es.flush()
    assert client.requests == []
    assert result.written == 0 and [r.record for r in result.rejected] == [bad]
    assert reason in result.rejected[0].reason
    assert es.pending() == 0


@pytest.mark.parametrize("prefix", ["Twin", "a b", "-twin", "tw*n", "_twin", "a#b"])
def test_an_index_prefix_elasticsearch_refuses_is_a_one_line_error(prefix: str) -> None:
    from twin.errors import SinkError

    with pytest.raises(SinkError, match="invalid Elasticsearch index prefix"):
        sink(prefix=prefix)


def test_an_alarm_document_keeps_the_raising_value_its_peak_and_its_clearing_value() -> None:
    cleared = BUILDERS["twin.alarms"][1](s.alarm("CLEARED_UNACK", at=s.T0 + 60_000))
    assert (cleared["value"], cleared["peak_value"], cleared["clear_value"]) == (41.5, 38.0, 46.2)
    assert cleared["message"] == "hydraulic pressure low"  # the message that raised it
    active = BUILDERS["twin.alarms"][1](s.alarm("ACTIVE_UNACK"))
    assert active["clear_value"] is None
    # Numbers in both alarm indices, so a range query ("cleared above 45 bar") works.
    for kind in ("alarms", "current-alarms"):
        assert PROPERTIES[kind]["peak_value"]["type"] == PROPERTIES[kind]["clear_value"]["type"] == "double"
