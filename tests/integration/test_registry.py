"""The local registry speaks the Confluent API: register, fetch by id, enforce compatibility."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from twin.clients import schema_registry
from twin.settings import Settings

V1 = {
    "type": "record",
    "name": "Reading",
    "namespace": "dev.factorytwin.test",
    "fields": [
        {"name": "machine_id", "type": "string"},
        {"name": "value", "type": "double"},
    ],
}


def test_register_and_fetch_by_id(settings: Settings, stack: object, subject: str) -> None:
    with schema_registry(settings) as client:
        schema_id = client.register_schema(subject, Schema(json.dumps(V1), "AVRO"))
    # A second client has no cache: the schema really comes back from the server by id.
    with schema_registry(settings) as fresh:
        fetched = fresh.get_schema(schema_id)
        latest = fresh.get_latest_version(subject)
    assert fetched.schema_type == "AVRO"
    assert json.loads(fetched.schema_str or "") == V1
    assert latest.schema_id == schema_id
    assert latest.version == 1


def test_backward_compatibility_is_enforced(settings: Settings, stack: object, subject: str) -> None:
    with schema_registry(settings) as client:
        _evolve(client, subject)


def _evolve(client: SchemaRegistryClient, subject: str) -> None:
    client.register_schema(subject, Schema(json.dumps(V1), "AVRO"))
    client.set_compatibility(subject, "BACKWARD")

    # A new required field without a default cannot read old data: rejected.
    incompatible = {**V1, "fields": [*V1["fields"], {"name": "unit", "type": "string"}]}
    assert not client.test_compatibility(subject, Schema(json.dumps(incompatible), "AVRO"))
    with pytest.raises(SchemaRegistryError):
        client.register_schema(subject, Schema(json.dumps(incompatible), "AVRO"))

    # The same field with a default is a compatible evolution.
    compatible = {**V1, "fields": [*V1["fields"], {"name": "unit", "type": "string", "default": ""}]}
    assert client.test_compatibility(subject, Schema(json.dumps(compatible), "AVRO"))
    client.register_schema(subject, Schema(json.dumps(compatible), "AVRO"))
    assert client.get_latest_version(subject).version == 2
