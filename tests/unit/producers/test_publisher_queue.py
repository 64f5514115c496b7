"""The publisher's back-pressure: a full local queue waits (and is counted), it never drops."""

from __future__ import annotations

from typing import Any

import pytest

import producers.publisher as publisher_module
from producers.publisher import Publisher
from twin.settings import Settings


class QueueFullFor:
    """A producer whose local queue is full for the first ``tries`` produce calls."""

    def __init__(self, tries: int) -> None:
        self.tries = tries
        self.sent: list[tuple[str, Any, bytes]] = []
        self.waits = 0

    def produce(
        self,
        topic: str,
        value: bytes,
        key: Any = None,
        partition: int = -1,
        on_delivery: Any = None,
        headers: Any = None,
    ) -> None:
        if self.tries:
            self.tries -= 1
            raise BufferError
        self.sent.append((topic, key, value))
        on_delivery(None, None)

    def poll(self, timeout: float) -> int:
        self.waits += 1
        return 0

    def flush(self, timeout: float) -> int:
        return 0

    def __len__(self) -> int:
        return 0


def test_a_full_queue_is_waited_out_and_counted_and_the_event_is_sent_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = QueueFullFor(3)
    monkeypatch.setattr(publisher_module, "kafka_producer", lambda _settings, **_kw: fake)
    publisher = Publisher(Settings())
    publisher.publish("factory.telemetry", "cnc-1", b"event")
    assert fake.sent == [("factory.telemetry", "cnc-1", b"event")]
    assert fake.waits >= 3  # librdkafka got time to drain the queue each time
    stats = publisher.stats
    assert (stats.produced, stats.acked, stats.queue_full, stats.in_flight) == (1, 1, 3, 0)
