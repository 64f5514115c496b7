"""The local Kafka is a real broker: an idempotent, acks=all producer round-trips keyed events."""

from __future__ import annotations

import time
from collections import defaultdict

from twin.clients import kafka_consumer, kafka_producer
from twin.settings import Settings


def test_idempotent_producer_round_trip_keeps_per_key_order(settings: Settings, topic: str) -> None:
    producer = kafka_producer(settings)
    acked: list[tuple[int, int]] = []
    errors: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            acked.append((msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    sent: dict[str, list[str]] = defaultdict(list)
    for i in range(300):
        key = f"machine-{i % 7}"
        value = f"{key}:{i}"
        sent[key].append(value)
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []
    assert len(acked) == 300

    consumer = kafka_consumer(settings, group_id=f"{topic}.reader")
    consumer.subscribe([topic])
    received: dict[str, list[str]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    count = 0
    deadline = time.monotonic() + 60
    while count < 300 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        key = (msg.key() or b"").decode()
        received[key].append((msg.value() or b"").decode())
        partitions[key].add(msg.partition() or 0)
        count += 1
    extra = consumer.poll(2.0)  # nothing beyond what was sent: no duplicates from retries
    consumer.close()

    assert extra is None

    assert received == sent  # nothing lost, nothing duplicated, order kept per key
    assert all(len(p) == 1 for p in partitions.values())  # a key always lands on one partition
    assert len({p for ps in partitions.values() for p in ps}) > 1  # and the topic really has several
