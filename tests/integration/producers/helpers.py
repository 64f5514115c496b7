"""Consume a topic with Confluent's own deserializer: a reader that knows nothing of our code."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from twin.clients import kafka_consumer, schema_registry
from twin.settings import Settings


def consume_all(settings: Settings, topics: list[str], *, limit_s: float = 120) -> list[dict[str, Any]]:
    """Every record on ``topics`` up to their current end, decoded.

    Partitions are assigned directly and read up to the high watermarks taken now, so the result is
    exact and does not wait on a consumer-group join (slow on a fresh broker).
    """
    records: list[dict[str, Any]] = []
    consumer = kafka_consumer(settings, group_id=f"test.reader.{uuid.uuid4().hex[:8]}")
    metadata = consumer.list_topics(timeout=30)
    ends: dict[tuple[str, int], int] = {}
    for topic in topics:
        for partition in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            if high > low:
                ends[(topic, partition)] = high
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for (t, p) in ends])
    with schema_registry(settings) as registry:
        deserializer = AvroDeserializer(registry)
        deadline = time.monotonic() + limit_s
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            key = (msg.topic() or "", msg.partition() or 0)
            end = ends.get(key)
            if end is None or (msg.offset() or 0) >= end:
                continue
            value = deserializer(msg.value(), SerializationContext(key[0], MessageField.VALUE))
            assert value is not None
            value["_topic"], value["_key"] = key[0], (msg.key() or b"").decode()
            records.append(value)
            if (msg.offset() or 0) + 1 >= end:
                ends.pop(key)
    consumer.close()
    assert not ends, f"partitions not read to their end within {limit_s}s: {sorted(ends)}"
    return records


def twin(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
