"""The Kafka side of every sink: consume, decode, write durably, then commit.

One loop for any :class:`sinks.base.Sink`:

1. ``consume`` up to ``batch_max`` records (or what arrives within ``batch_wait_s``);
2. decode each; what cannot be decoded goes to ``<topic>.dlq`` with the reason in its headers;
3. ``sink.add`` each record, then ``sink.flush``;
4. records the store refused for good (``FlushResult.rejected``) go to the DLQ too;
5. only when the rows are written and the dead letters acknowledged are the batch's offsets
   committed. A crash anywhere before that re-reads the batch; the writes are idempotent.

When the store is down (``BackpressureError``) the runner pauses every assigned partition, so memory
stays at one batch, keeps polling so it stays in the group, retries ``flush`` with exponential
back-off (``retry_initial_s`` doubling up to ``retry_max_s``) and resumes the partitions by itself
when a flush succeeds. A schema registry outage is handled the same way: the undecoded rest of the
batch is rewound and read again later, never dead-lettered.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

from schemas import Codecs
from sinks.base import FlushResult, Rejected, Sink, SinkRecord
from twin.clients import kafka_consumer, kafka_producer, schema_registry
from twin.dlq import ERROR_REASON, SINK, DeadLetterQueue, dead_letter_headers
from twin.errors import (
    BackpressureError,
    DecodeError,
    DeliveryFailedError,
    RegistryUnavailableError,
    SinkRejectionError,
    TwinError,
    one_line,
)
from twin.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, TopicPartition

log = logging.getLogger(__name__)

RECORDS_IN = Counter("twin_sink_records_consumed_total", "Records consumed by a sink", ["sink"])
ROWS_WRITTEN = Counter(
    "twin_sink_rows_written_total", "Rows (Cassandra) or documents (Elasticsearch) written", ["sink"]
)
RETRIES = Counter(
    "twin_sink_write_retries_total", "Flushes retried after a store outage or overload", ["sink"]
)
DEAD_LETTERS = Counter(
    "twin_sink_dead_letters_total", "Records sent to a dead-letter topic", ["sink", "reason"]
)
LAG = Gauge("twin_sink_consumer_lag_records", "Records behind the end of the assigned partitions", ["sink"])
PAUSED = Gauge("twin_sink_paused", "1 while the sink's partitions are paused by a store outage", ["sink"])
WRITE_SECONDS = Histogram(
    "twin_sink_write_seconds",
    "Time to make one batch durable (one flush call)",
    ["sink"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

LAG_EVERY_S = 5.0
REJECTED_REASON = "rejected"


class _Stopped(Exception):
    """Stop was asked while waiting for a store: leave without committing the pending batch."""


@dataclass
class RunStats:
    """What a runner did so far (also what the tests and the demo read)."""

    consumed: int = 0
    written: int = 0
    dead_lettered: int = 0
    retries: int = 0
    outages: int = 0
    paused_s: float = 0.0
    commits: int = 0
    last_error: str = ""
    committed: dict[tuple[str, int], int] = field(default_factory=dict)


class SinkRunner:
    """Runs one sink over its catalog topics (with ``settings.sinks.topic_prefix``) until stopped.

    >>> runner = SinkRunner(settings, CassandraSink(settings))   # doctest: +SKIP
    >>> runner.run(stop_event)                                    # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Settings,
        sink: Sink,
        *,
        group_id: str | None = None,
        consumer_overrides: dict[str, Any] | None = None,
    ) -> None:
        cfg = settings.sinks
        self.settings = settings
        self.sink = sink
        self.prefix = cfg.topic_prefix
        self.group_id = group_id or f"{cfg.group_prefix}-{sink.name}"
        self.topics = {self.prefix + t: t for t in sink.topics}  # real name -> catalog name
        self.stats = RunStats()
        self._label = sink.name
        self._consumer_overrides = {
            # bounded prefetch: a paused sink never holds more than this in librdkafka's queues
            "queued.max.messages.kbytes": 16384,
            "session.timeout.ms": 10000,
            **(consumer_overrides or {}),
        }
        self._registry = schema_registry(settings)
        # Sinks read the plain wire form and must not create subjects (the producers own them).
        self._codecs = Codecs(self._registry, prefix=self.prefix, register=False, logical_types=False)
        self._consumer: Consumer | None = None
        self._producer = kafka_producer(settings, **{"linger.ms": 0})
        self._dlq = DeadLetterQueue(self._producer)
        self._dlq_failed: list[str] = []
        self._assigned: set[tuple[str, int]] = set()
        self._paused = False
        self._last_lag = 0.0
        self.ready = threading.Event()  # set once the sink is set up and the consumer subscribed
        # One writer thread: flush of batch N while this thread consumes and decodes batch N+1.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sink-{sink.name}-write")
        self._writing: Future[FlushResult] | None = None
        self._writing_highest: dict[tuple[str, int], int] = {}

    # -- public ----------------------------------------------------------------------------------
    @property
    def assigned(self) -> int:
        """How many partitions this runner owns now."""
        return len(self._assigned)

    def run(self, stop: threading.Event) -> RunStats:
        """Consume and write until ``stop`` is set; the last good batch is committed on the way out."""
        try:
            self._setup(stop)
            consumer = self._consumer = kafka_consumer(
                self.settings, self.group_id, **self._consumer_overrides
            )
            consumer.subscribe(list(self.topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
            self.ready.set()
            while not stop.is_set():
                self._step(consumer, stop)
            self._finish_write(consumer, stop)  # the last batch: written, then committed
        except _Stopped:
            log.info(
                "%s sink: stopped while its store was unavailable; the batch will be re-read", self._label
            )
        finally:
            self._close()
        return self.stats

    # -- setup -----------------------------------------------------------------------------------
    def _setup(self, stop: threading.Event) -> None:
        backoff = self.settings.sinks.retry_initial_s
        while True:
            try:
                self.sink.setup()
                return
            except BackpressureError as exc:
                self.stats.last_error = str(exc)
                log.warning("%s sink: store not reachable at start: %s", self._label, exc)
                backoff = self._sleep(stop, max(exc.retry_after_s, backoff), backoff)

    # -- the loop --------------------------------------------------------------------------------
    def _step(self, consumer: Consumer, stop: threading.Event) -> None:
        """One batch. Its write overlaps consuming and decoding the next one: batch N is flushed in
        the writer thread while this thread reads N+1, and N+1 reaches the sink only after N is
        durable and committed, so the sink never sees two batches at once and order holds."""
        cfg = self.settings.sinks
        messages = consumer.consume(num_messages=cfg.batch_max, timeout=cfg.batch_wait_s)
        staged: list[SinkRecord] = []
        highest = self._take(consumer, messages, staged)
        self._finish_write(consumer, stop)
        if highest:
            for record in staged:
                self.sink.add(record)
            self._writing = self._writer.submit(self._timed_flush)
            self._writing_highest = highest
        now = time.monotonic()
        if now - self._last_lag >= LAG_EVERY_S:
            self._last_lag = now
            self._report_lag(consumer)

    def _take(
        self, consumer: Consumer, messages: list[Message], staged: list[SinkRecord] | None = None
    ) -> dict[tuple[str, int], int]:
        """Decode a batch into ``staged`` (or ``add`` it to the sink); the highest offset per partition."""
        highest: dict[tuple[str, int], int] = {}
        taken = 0
        for i, msg in enumerate(messages):
            err = msg.error()
            if err is not None:
                if err.fatal():
                    text = f"{self._label} sink: fatal consumer error: {err}"
                    raise TwinError(text)
                log.warning("%s sink: consumer error: %s", self._label, err)
                continue
            real = msg.topic() or ""
            catalog = self.topics.get(real)
            partition = msg.partition() or 0
            offset = msg.offset() or 0
            value = msg.value()
            try:
                if catalog is None:
                    raise DecodeError("topic", f"record from unexpected topic {real!r}")
                record = self._codecs(real).decode(value)
            except RegistryUnavailableError as exc:
                # An outage, not bad input: read these records again once the registry answers.
                self.stats.last_error = str(exc)
                log.warning("%s sink: %s", self._label, exc)
                self._rewind(consumer, messages[i:])
                time.sleep(self.settings.sinks.retry_initial_s)
                break
            except DecodeError as exc:
                self._dead_letter(real, partition, offset, msg.key(), value, exc, exc.reason)
            else:
                decoded = SinkRecord(catalog, partition, offset, msg.key(), record, value)
                if staged is None:
                    self.sink.add(decoded)
                else:
                    staged.append(decoded)
            highest[(real, partition)] = offset
            taken += 1
        self.stats.consumed += taken
        RECORDS_IN.labels(self._label).inc(taken)
        return highest

    def _finish_write(self, consumer: Consumer, stop: threading.Event) -> None:
        """Wait for the batch being written; retry it through an outage; then commit it."""
        writing, self._writing = self._writing, None
        if writing is not None:
            self._flush(consumer, stop, writing)
            self._commit(consumer, self._writing_highest)

    def _timed_flush(self) -> FlushResult:
        started = time.perf_counter()
        result = self.sink.flush()
        WRITE_SECONDS.labels(self._label).observe(time.perf_counter() - started)
        return result

    def _flush(self, consumer: Consumer, stop: threading.Event, first: Future[FlushResult]) -> None:
        """Take ``first`` (a flush already under way); while the store pushes back, pause and flush
        again with back-off until everything added is durable."""
        cfg = self.settings.sinks
        backoff = cfg.retry_initial_s
        outage_started: float | None = None
        attempt: Future[FlushResult] | None = first
        while True:
            try:
                result = attempt.result() if attempt is not None else self._timed_flush()
            except BackpressureError as exc:
                attempt = None
                self.stats.retries += 1
                self.stats.last_error = str(exc)
                RETRIES.labels(self._label).inc()
                if outage_started is None:
                    outage_started = time.monotonic()
                    self.stats.outages += 1
                    log.warning(
                        "%s sink: store unavailable (%s); pausing %d partitions, %d records held",
                        self._label,
                        exc.reason,
                        len(self._assigned),
                        self.sink.pending(),
                    )
                    self._pause(consumer)
                backoff = self._wait_polling(consumer, stop, max(exc.retry_after_s, backoff), backoff)
                continue
            break
        self.stats.written += result.written
        ROWS_WRITTEN.labels(self._label).inc(result.written)
        for rejected in result.rejected:
            self._reject(rejected)
        self._confirm_dead_letters()
        if outage_started is not None:
            down = time.monotonic() - outage_started
            self.stats.paused_s += down
            log.warning("%s sink: store back after %.1fs; resuming", self._label, down)
            self._resume(consumer)

    def _commit(self, consumer: Consumer, highest: dict[tuple[str, int], int]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        # Only partitions still ours: a revoked one's rows are written (idempotently) but its new
        # owner decides its offsets.
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in highest.items() if (t, p) in self._assigned]
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning(
                "%s sink: commit failed (%s); the batch will be re-read and rewritten", self._label, exc
            )
            return
        self.stats.commits += 1
        for tp in offsets:
            self.stats.committed[(tp.topic, tp.partition)] = tp.offset

    # -- outages ---------------------------------------------------------------------------------
    def _pause(self, consumer: Consumer) -> None:
        from confluent_kafka import TopicPartition

        self._paused = True
        PAUSED.labels(self._label).set(1)
        if self._assigned:
            consumer.pause([TopicPartition(t, p) for t, p in self._assigned])

    def _resume(self, consumer: Consumer) -> None:
        from confluent_kafka import TopicPartition

        self._paused = False
        PAUSED.labels(self._label).set(0)
        if self._assigned:
            consumer.resume([TopicPartition(t, p) for t, p in self._assigned])

    def _wait_polling(
        self, consumer: Consumer, stop: threading.Event, wait_s: float, backoff: float
    ) -> float:
        """Wait ``wait_s`` while serving the group (heartbeats, rebalances); the next back-off."""
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            if stop.is_set():
                raise _Stopped
            # Partitions are paused, so this returns nothing but rebalance callbacks; a partition
            # assigned mid-outage is paused in _on_assign, and any stray record is still added.
            strays = consumer.consume(num_messages=self.settings.sinks.batch_max, timeout=min(left, 0.5))
            if strays:
                self._take(consumer, strays)
        return min(backoff * 2, self.settings.sinks.retry_max_s)

    def _sleep(self, stop: threading.Event, wait_s: float, backoff: float) -> float:
        if stop.wait(wait_s):
            raise _Stopped
        return min(backoff * 2, self.settings.sinks.retry_max_s)

    def _rewind(self, consumer: Consumer, messages: list[Message]) -> None:
        from confluent_kafka import TopicPartition

        first: dict[tuple[str, int], int] = {}
        for m in messages:
            if m.error() is None:
                key = (m.topic() or "", m.partition() or 0)
                first.setdefault(key, m.offset() or 0)
        for (t, p), o in first.items():
            consumer.seek(TopicPartition(t, p, o))

    # -- rebalances ------------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        self._assigned = {(tp.topic, tp.partition) for tp in partitions}
        if self._paused and partitions:
            consumer.pause(partitions)
        log.info("%s sink: assigned %d partitions", self._label, len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned -= {(tp.topic, tp.partition) for tp in partitions}
        consumer.unassign()
        log.info("%s sink: revoked %d partitions", self._label, len(partitions))

    # -- dead letters ----------------------------------------------------------------------------
    def _reject(self, rejected: Rejected) -> None:
        r = rejected.record
        error = SinkRejectionError(rejected.reason)
        self._dead_letter(self.prefix + r.topic, r.partition, r.offset, r.key, r.raw, error, REJECTED_REASON)

    def _dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error: BaseException,
        reason: str,
    ) -> None:
        headers = dead_letter_headers(topic, partition, offset, error)
        headers = [(k, v) for k, v in headers if k != ERROR_REASON] + [(ERROR_REASON, reason.encode())]
        headers.append((SINK, self._label.encode()))
        self._dlq.send_raw(topic, key, value, headers, on_delivery=self._on_dlq_delivery)
        self.stats.dead_lettered += 1
        DEAD_LETTERS.labels(self._label, reason).inc()
        log.warning("%s sink: dead-lettered %s[%d]@%d: %s", self._label, topic, partition, offset, error)

    def _on_dlq_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._dlq_failed.append(str(err))

    def _confirm_dead_letters(self) -> None:
        """Dead letters are part of the batch's effect: wait for the broker before committing."""
        if not self._dlq.sent:
            return
        while self._producer.flush(10.0) > 0:
            log.warning("%s sink: waiting for the broker to take dead letters", self._label)
        if self._dlq_failed:
            failed, self._dlq_failed = self._dlq_failed, []
            msg = f"{self._label} sink: could not write dead letters: {failed[0]}"
            raise DeliveryFailedError(msg)
        self._dlq.sent = 0

    # -- metrics and shutdown --------------------------------------------------------------------
    def _report_lag(self, consumer: Consumer) -> None:
        from confluent_kafka import TopicPartition

        if not self._assigned:
            LAG.labels(self._label).set(0)
            return
        lag = 0
        try:
            positions = consumer.position([TopicPartition(t, p) for t, p in self._assigned])
            for tp in positions:
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0 and tp.offset >= 0:
                    lag += max(0, high - tp.offset)
        except Exception as exc:  # lag is a metric; never let it stop the sink
            log.debug("lag unavailable: %s", exc)
            return
        LAG.labels(self._label).set(lag)

    def _close(self) -> None:
        PAUSED.labels(self._label).set(0)
        self._writer.shutdown(wait=True)  # a write under way finishes (it is not committed)
        if self._consumer is not None:
            try:
                self._consumer.close()  # leave the group now, not after the session timeout
            except Exception as exc:
                log.debug("consumer close: %s", exc)
            self._consumer = None
        self._producer.flush(10.0)
        self._registry.close()
        self.sink.close()


def run_in_thread(runner: SinkRunner, name: str | None = None) -> tuple[threading.Thread, threading.Event]:
    """Start ``runner`` in a daemon thread; returns it and the event that stops it."""
    stop = threading.Event()
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["stats"] = runner.run(stop)
        except Exception as exc:
            runner.stats.last_error = one_line(exc)
            log.exception("%s sink crashed", runner.sink.name)

    thread = threading.Thread(target=target, name=name or f"sink-{runner.sink.name}", daemon=True)
    thread.start()
    return thread, stop
