"""Consume a topic with Confluent's own deserializer: a reader that knows nothing of our code."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any

from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from twin.clients import kafka_consumer, schema_registry
from twin.settings import Settings


def consume_all(
    settings: Settings, topics: list[str], *, idle_s: float = 3.0, limit_s: float = 120
) -> list[dict[str, Any]]:
    """Every record on ``topics`` from the beginning, decoded; stops after ``idle_s`` without news."""
    records: list[dict[str, Any]] = []
    consumer = kafka_consumer(settings, group_id=f"test.reader.{uuid.uuid4().hex[:8]}")
    consumer.subscribe(topics)
    with schema_registry(settings) as registry:
        deserializer = AvroDeserializer(registry)
        last = time.monotonic()
        deadline = last + limit_s
        while time.monotonic() - last < idle_s and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            last = time.monotonic()
            ctx = SerializationContext(msg.topic() or "", MessageField.VALUE)
            value = deserializer(msg.value(), ctx)
            assert value is not None
            value["_topic"], value["_key"] = msg.topic(), (msg.key() or b"").decode()
            records.append(value)
    consumer.close()
    return records


def twin(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin", *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
