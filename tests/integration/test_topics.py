"""`ensure_topics` makes broker and registry match the catalog, idempotently, with BACKWARD rules."""

from __future__ import annotations

import dataclasses
import json
import uuid

import fastavro
import pytest
from confluent_kafka.admin import ConfigResource
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.schema import to_parsing_canonical_form

from localstack import Infra
from pipelines.topics import broker_topics, delete_topics, ensure_internal_topic, ensure_topics
from schemas import load_schema
from twin.clients import kafka_admin, schema_registry
from twin.settings import Settings
from twin.topics import topic


def test_catalog_topics_are_created_once_with_their_config(stack: Infra, settings: Settings) -> None:
    run = uuid.uuid4().hex[:8]
    telemetry = dataclasses.replace(topic("factory.telemetry"), name=f"test.{run}.telemetry")
    state = dataclasses.replace(topic("twin.state"), name=f"test.{run}.state")
    first = ensure_topics(settings, (telemetry, state))
    assert f"created topic {telemetry.name}" in first and f"created topic {state.dlq}" in first
    second = ensure_topics(settings, (telemetry, state))
    assert f"topic {telemetry.name} exists" in second  # idempotent

    on_broker = broker_topics(settings)
    assert on_broker[telemetry.name] == telemetry.partitions
    assert state.dlq in on_broker
    admin = kafka_admin(settings)
    resource = ConfigResource(ConfigResource.Type.TOPIC, state.name)
    config = admin.describe_configs([resource])[resource].result(30)
    assert config["cleanup.policy"].value == "compact"

    with schema_registry(settings) as registry:
        assert registry.get_compatibility(telemetry.value_subject) == "BACKWARD"
        latest = registry.get_latest_version(telemetry.value_subject)
        stored = fastavro.parse_schema(json.loads(latest.schema.schema_str or ""))
        assert to_parsing_canonical_form(stored) == to_parsing_canonical_form(load_schema("telemetry").parsed)

        # Renaming a field without an alias breaks old readers' data: the registry says no.
        breaking = json.loads(load_schema("telemetry").text)
        next(f for f in breaking["fields"] if f["name"] == "machine_id")["name"] = "asset_id"
        with pytest.raises(SchemaRegistryError):
            registry.register_schema(telemetry.value_subject, Schema(json.dumps(breaking), "AVRO"))
        # Adding an optional field with a default is fine.
        evolved = json.loads(load_schema("telemetry").text)
        evolved["fields"].append({"name": "site", "type": ["null", "string"], "default": None})
        registry.register_schema(telemetry.value_subject, Schema(json.dumps(evolved), "AVRO"))
        assert registry.get_versions(telemetry.value_subject) == [1, 2]


def test_a_workers_internal_topic_is_listed_before_it_returns_and_creating_it_again_is_fine(
    stack: Infra, settings: Settings
) -> None:
    name = f"test.{uuid.uuid4().hex[:8]}.line-events"
    try:
        ensure_internal_topic(settings, name, 6)
        assert broker_topics(settings)[name] == 6  # listed at once: a consumer joining now sees it
        ensure_internal_topic(settings, name, 6)  # a restarted worker: already there
    finally:
        delete_topics(settings, lambda n: n == name)
