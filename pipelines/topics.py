"""Make the broker and the registry match the topic catalog (used by `twin topics` and the demo), and
clear away the topics tests and benches made."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource, NewTopic
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from schemas import load_schema
from twin.clients import kafka_admin, schema_registry
from twin.errors import ConfigError, InfraError
from twin.settings import Settings
from twin.topics import CATALOG, Topic, dlq_topic


def _new(t: Topic, replication: int) -> NewTopic:
    return NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication, config=t.config())


def _create(admin: Any, wanted: list[NewTopic]) -> list[str]:
    """Create ``wanted``; one report line per topic ("created" or "exists"), InfraError otherwise."""
    report: list[str] = []
    futures = admin.create_topics(wanted, operation_timeout=30, request_timeout=30)
    for name, future in futures.items():
        try:
            future.result(timeout=60)
            report.append(f"created topic {name}")
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" in str(exc):
                report.append(f"topic {name} exists")
                continue
            msg = f"could not create topic {name}: {exc.args[0] if exc.args else exc}"
            raise InfraError(msg) from exc
    return report


def ensure_topics(
    settings: Settings,
    topics: tuple[Topic, ...] = CATALOG,
    *,
    compatibility: str = "BACKWARD",
    replication: int = 1,
) -> list[str]:
    """Create missing topics (and DLQs), register value schemas, set compatibility. Idempotent."""
    admin = kafka_admin(settings)
    wanted = [_new(t, replication) for t in topics] + [_new(dlq_topic(t), replication) for t in topics]
    report = _create(admin, wanted)
    with schema_registry(settings) as registry:
        for t in topics:
            schema = load_schema(t.value_schema)
            try:
                schema_id = registry.register_schema(t.value_subject, Schema(schema.text, "AVRO"))
                registry.set_compatibility(t.value_subject, compatibility)
            except SchemaRegistryError as exc:
                msg = f"registry refused {t.value_subject}: {exc}"
                raise ConfigError(msg) from exc
            report.append(f"schema {t.value_subject} -> id {schema_id} ({compatibility})")
    return report


def ensure_internal_topic(settings: Settings, name: str, partitions: int, wait_s: float = 30.0) -> None:
    """Create a worker's own topic (no schema, not in the catalog) and wait until metadata lists it.

    Faust creates its internal topics while it starts, just before its consumer joins the group;
    when the broker's metadata does not list the new topic yet, Faust's assignor ignores it
    ("Ignoring missing topic") and nothing consumes it until the next rebalance (seen once in CI:
    a worker that never read its forwarded line events). Created first, it is there at the join.
    """
    admin = kafka_admin(settings)
    _create(admin, [NewTopic(name, num_partitions=partitions, replication_factor=1)])
    deadline = time.monotonic() + wait_s
    while True:
        listed = admin.list_topics(name, timeout=10).topics.get(name)
        if listed is not None and listed.error is None and len(listed.partitions) >= partitions:
            return
        if time.monotonic() > deadline:
            msg = f"topic {name} was created but the broker's metadata does not list it after {wait_s:.0f}s"
            raise InfraError(msg)
        time.sleep(0.2)


def broker_topics(settings: Settings) -> dict[str, int]:
    """Topic name -> partition count, as the broker reports it."""
    admin = kafka_admin(settings)
    metadata = admin.list_topics(timeout=10)
    return {name: len(t.partitions) for name, t in metadata.topics.items()}


def describe_topic(settings: Settings, t: Topic) -> dict[str, str]:
    info: dict[str, str] = {
        "topic": t.name,
        "description": t.description,
        "key": t.key,
        "value schema": f"schemas/avro/{t.value_schema}.avsc ({load_schema(t.value_schema).name})",
        "subject": t.value_subject,
        "dead-letter topic": t.dlq,
        "catalog partitions": str(t.partitions),
        "catalog config": ", ".join(f"{k}={v}" for k, v in t.config().items()),
    }
    partitions = broker_topics(settings).get(t.name)
    info["broker partitions"] = (
        str(partitions) if partitions is not None else "not created (twin topics create)"
    )
    if partitions is not None:
        admin = kafka_admin(settings)
        resource = ConfigResource(ConfigResource.Type.TOPIC, t.name)
        configs = admin.describe_configs([resource])[resource].result(timeout=10)
        keys = ("cleanup.policy", "retention.ms", "min.insync.replicas")
        info["broker config"] = ", ".join(f"{k}={configs[k].value}" for k in keys if k in configs)
    with schema_registry(settings) as registry:
        try:
            versions = registry.get_versions(t.value_subject)
            latest = registry.get_latest_version(t.value_subject)
            level = registry.get_compatibility(t.value_subject)
            info["schema versions"] = f"{versions} (latest id {latest.schema_id}, {level})"
        except SchemaRegistryError:
            info["schema versions"] = "not registered (twin topics create)"
    return info


def delete_topics(settings: Settings, doomed: Callable[[str], bool]) -> list[str]:
    """Delete every topic whose name ``doomed`` accepts (what a test or bench made); their names.

    A broker full of stale topics slows every client's metadata refresh.
    """
    admin = kafka_admin(settings)
    names = [n for n in admin.list_topics(timeout=10).topics if doomed(n)]
    for future in admin.delete_topics(names, operation_timeout=30).values() if names else ():
        with contextlib.suppress(KafkaException):
            future.result(30)
    return names
