"""Publish encoded events with no loss: idempotent acks=all producer, back-pressure, delivery accounting."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from producers import metrics
from twin.clients import kafka_producer, produce_blocking
from twin.settings import Settings

log = logging.getLogger(__name__)

# Batching tuned for many small records (100-300 B): bigger batches, a short linger, lz4. A long
# delivery timeout lets the producer ride out a broker restart instead of failing records.
TUNING: dict[str, Any] = {
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 20_000,
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "compression.type": "lz4",
    "message.timeout.ms": 300_000,
    "socket.keepalive.enable": True,
}


@dataclass
class PublishStats:
    produced: int = 0
    acked: int = 0
    failed: int = 0
    invalid: int = 0
    queue_full: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def in_flight(self) -> int:
        return self.produced - self.acked - self.failed

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.produced / elapsed if elapsed > 0 else 0.0


class Publisher:
    """Wraps one confluent-kafka producer. ``publish`` never drops: a full local queue waits.

    Hot loops (``ProduceSession.run``) call the client's ``produce`` themselves with
    ``delivery_callback``, fall back to ``send`` on BufferError only, and add their count to
    ``stats.produced`` in batches; ``publish`` is the same for one record at a time.
    """

    def __init__(self, settings: Settings, *, acked_ids: Path | None = None, **overrides: Any) -> None:
        self._producer = kafka_producer(settings, **{**TUNING, **overrides})
        self.stats = PublishStats()
        self._ids: IO[str] | None = acked_ids.open("a", buffering=1 << 16) if acked_ids else None
        self._reported = PublishStats()
        self._on_delivery = self._counter()

    @property
    def produce(self) -> Callable[..., None]:
        """The client's own ``produce(topic, value, key, partition, on_delivery)``: raises BufferError
        on a full queue (then call ``send``) and counts nothing."""
        return self._producer.produce

    @property
    def serve_callbacks(self) -> Callable[[float], int]:
        """The client's own ``poll(timeout)``: serves delivery callbacks, pushes no metrics."""
        return self._producer.poll

    @property
    def writes_ids(self) -> bool:
        """Whether acknowledged event ids are written (then every record needs its own callback)."""
        return self._ids is not None

    def _counter(self) -> Callable[[Any, Any], None]:
        # One shared callback for every message; a closure over the stats object spares the
        # attribute lookups of a bound method on each of the ~300k calls a second.
        stats = self.stats
        fail = self._fail

        def on_delivery(err: Any, msg: Any) -> None:
            if err is None:
                stats.acked += 1
            else:
                fail(err)

        return on_delivery

    def _fail(self, err: Any) -> None:
        self.stats.failed += 1
        name = err.name() if hasattr(err, "name") else str(err)
        self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
        if self.stats.failed <= 5:
            log.error("delivery failed: %s", err)

    def delivery_callback(self, event_id: str | None = None) -> Callable[[Any, Any], None]:
        """The callback to produce one record with: the shared counter, or, when acked ids are
        written, one that also writes ``event_id`` once the broker has it."""
        ids = self._ids
        if ids is None or not event_id:
            return self._on_delivery
        stats = self.stats
        fail = self._fail
        line = event_id + "\n"

        def on_delivery(err: Any, msg: Any) -> None:
            if err is None:
                stats.acked += 1
                ids.write(line)
            else:
                fail(err)

        return on_delivery

    def send(
        self, topic: str, value: bytes, key: str | bytes | None, callback: Callable[[Any, Any], None]
    ) -> None:
        """Hand one message to the client; does not count it. A full local queue is back-pressure
        (``produce_blocking`` waits for it to free), never a drop; the waits count as ``queue_full``."""
        self.stats.queue_full += produce_blocking(self._producer, topic, value, key, on_delivery=callback)

    def publish(self, topic: str, key: str | bytes | None, value: bytes, event_id: str | None = None) -> None:
        self.send(topic, value, key, self.delivery_callback(event_id))
        stats = self.stats
        stats.produced += 1
        if not stats.produced & 0x3FF:
            self._producer.poll(0)

    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)
        self.report_metrics()

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for outstanding deliveries; returns how many are still unacknowledged."""
        deadline = time.monotonic() + timeout
        remaining = len(self._producer)
        while remaining and time.monotonic() < deadline:
            remaining = self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        self.report_metrics()
        return int(remaining)

    def close(self, timeout: float = 60.0) -> int:
        remaining = self.flush(timeout)
        if self._ids is not None:
            self._ids.close()
            self._ids = None
        return remaining

    def report_metrics(self) -> None:
        """Push counters to Prometheus in batches (a per-message lock would cost more than encoding)."""
        s, r = self.stats, self._reported
        metrics.EVENTS_PRODUCED.inc(s.produced - r.produced)
        metrics.EVENTS_ACKED.inc(s.acked - r.acked)
        metrics.EVENTS_FAILED.inc(s.failed - r.failed)
        metrics.EVENTS_INVALID.inc(s.invalid - r.invalid)
        metrics.QUEUE_FULL.inc(s.queue_full - r.queue_full)
        metrics.IN_FLIGHT.set(s.in_flight)
        r.produced, r.acked, r.failed, r.invalid, r.queue_full = (
            s.produced,
            s.acked,
            s.failed,
            s.invalid,
            s.queue_full,
        )
