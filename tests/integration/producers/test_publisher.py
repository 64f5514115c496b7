"""The publisher never drops: a full local queue waits (back-pressure), and metrics say so."""

from __future__ import annotations

from prometheus_client import REGISTRY

from producers.publisher import Publisher
from twin.settings import Settings


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_full_queue_waits_and_loses_nothing(settings: Settings, topic: str) -> None:
    before_acked = metric("twin_producer_events_acked_total")
    # A queue of 50 messages for 5,000 sends: the producer must wait for the broker many times.
    tiny_queue: dict[str, object] = {"queue.buffering.max.messages": 50, "linger.ms": 1}
    publisher = Publisher(settings, acked_ids=None, **tiny_queue)
    for i in range(5_000):
        publisher.publish(topic, f"m-{i % 5}", f"value-{i}".encode())
    assert publisher.close(60) == 0
    stats = publisher.stats
    assert stats.queue_full > 0  # back-pressure really happened
    assert stats.produced == stats.acked == 5_000 and stats.failed == 0
    assert metric("twin_producer_events_acked_total") - before_acked == 5_000
    assert metric("twin_producer_in_flight_messages") == 0
