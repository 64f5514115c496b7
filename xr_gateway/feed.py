"""The one Kafka consumer of a gateway process, in a thread, handing decoded batches to the loop.

Partitions are assigned, not subscribed: every gateway replica needs every event, and it commits
nothing. ``twin.state`` (compacted) is read from the beginning, which rebuilds the latest state of
every machine; the other streams start at their end (a live view has no use for old alarms). The
hub is marked ready once ``twin.state`` has been read up to the end it had at start-up.

Undecodable records are counted and logged, not dead-lettered: the processors and sinks own the
dead-letter topics, and N gateway replicas would write N copies of each.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, TopicPartition

from schemas import Codecs, codec_for
from twin.clients import kafka_consumer, schema_registry
from twin.errors import DecodeError, RegistryUnavailableError, TwinError
from twin.settings import Settings
from twin.topics import SCHEDULE_PLANS, TWIN_STATE, by_real_name, topic
from xr_gateway import metrics
from xr_gateway.frames import TOPIC_STREAMS

log = logging.getLogger(__name__)

Deliver = Callable[[list[tuple[str, dict[str, Any]]]], object]
BATCH_MAX = 1000
REFRESH_S = 10.0  # how often missing topics (schedule.plans before the scheduler exists) are looked for
LAG_EVERY_S = 2.0
PLANS_REREAD = 50  # plans per partition read back at start-up


class KafkaFeed:
    """``deliver`` and ``on_ready`` are called from the feed thread: wrap them with
    ``loop.call_soon_threadsafe`` (``Gateway`` does)."""

    def __init__(
        self, settings: Settings, topic_prefix: str, deliver: Deliver, on_ready: Callable[[], object]
    ):
        self.settings = settings
        self.prefix = topic_prefix
        self.deliver = deliver
        self.on_ready = on_ready
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.streams = {topic(name, topic_prefix).name: stream for name, stream in TOPIC_STREAMS.items()}
        self._codecs: Codecs | None = None  # made with the registry client, at the first assignment
        self._assigned: set[str] = set()
        self._catch_up: dict[int, int] = {}  # twin.state partition -> end offset at start-up
        self._ready = False
        self._registry: Any = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gateway-kafka-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            consumer = kafka_consumer(
                self.settings,
                group_id=f"twin-gateway-{uuid.uuid4().hex[:12]}",  # never joined, never committed
                **{"enable.partition.eof": False, "fetch.wait.max.ms": 100},
            )
        except Exception as exc:  # librdkafka config errors: the lifespan reports them
            self.error = exc
            log.exception("gateway feed could not start")
            return
        try:
            self._loop(consumer)
        except Exception as exc:
            self.error = exc
            log.exception("gateway feed stopped")
        finally:
            consumer.close()
            if self._registry is not None:
                self._registry.close()

    def _loop(self, consumer: Consumer) -> None:
        next_refresh = next_lag = 0.0
        state_topic = topic(TWIN_STATE, self.prefix).name
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_refresh:
                self._assign_new(consumer, state_topic)
                next_refresh = now + REFRESH_S
            if now >= next_lag:
                self._report_lag(consumer)
                next_lag = now + LAG_EVERY_S
            first = consumer.poll(0.2)
            if first is None:
                self._check_ready(consumer, state_topic)
                continue
            messages = [first, *consumer.consume(BATCH_MAX - 1, 0)]
            batch: list[tuple[str, dict[str, Any]]] = []
            for msg in messages:
                if msg.error() is not None:
                    log.warning("kafka: %s", msg.error())
                    continue
                decoded = self._decode(msg.topic() or "", msg.value())
                if decoded is not None:
                    batch.append(decoded)
            if batch:
                self.deliver(batch)
            self._check_ready(consumer, state_topic)

    def _decode(self, name: str, value: bytes | None) -> tuple[str, dict[str, Any]] | None:
        if name not in self._assigned or self._codecs is None:
            return None
        try:
            return self.streams[name], self._codecs(name).decode(value)
        except DecodeError as exc:
            metrics.DECODE_ERRORS.labels(name).inc()
            log.warning("skipping undecodable record on %s: %s", name, exc)
        except RegistryUnavailableError as exc:
            metrics.DECODE_ERRORS.labels(name).inc()
            log.warning("registry unavailable, skipping a record on %s: %s", name, exc)
        return None

    def _assign_new(self, consumer: Consumer, state_topic: str) -> None:
        try:
            existing = consumer.list_topics(timeout=10).topics
        except KafkaException as exc:
            log.warning("kafka metadata unavailable: %s", exc)
            return
        new = [t for t in self.streams if t not in self._assigned and t in existing]
        if not new:
            return
        if self._codecs is None:
            self._registry = schema_registry(self.settings)
            # Plain wire values (ints for times, strings for uuids): they go straight to JSON.
            self._codecs = Codecs(self._registry, prefix=self.prefix, register=False, logical_types=False)
        partitions: list[TopicPartition] = []
        for name in new:
            try:
                _reader(self._codecs, name)
            except TwinError as exc:
                log.warning("not reading %s yet: %s", name, exc)
                continue
            start = OFFSET_BEGINNING if name == state_topic else OFFSET_END
            for p in existing[name].partitions:
                if by_real_name(name, self.prefix).name == SCHEDULE_PLANS:
                    # The last plans too: /api/plans answers for each line right after a restart.
                    low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                    partitions.append(TopicPartition(name, p, max(low, high - PLANS_REREAD)))
                    continue
                partitions.append(TopicPartition(name, p, start))
                if name == state_topic:
                    low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                    if high > low:
                        self._catch_up[p] = high
            self._assigned.add(name)
        if partitions:
            consumer.incremental_assign(partitions)
            log.info("gateway reading %s", ", ".join(sorted({tp.topic for tp in partitions})))

    def _check_ready(self, consumer: Consumer, state_topic: str) -> None:
        if self._ready or state_topic not in self._assigned:
            return
        if self._catch_up:
            tps = [TopicPartition(state_topic, p) for p in self._catch_up]
            for tp in consumer.position(tps):
                if tp.offset >= self._catch_up.get(tp.partition, 0):
                    self._catch_up.pop(tp.partition, None)
        if not self._catch_up:
            self._ready = True
            self.on_ready()

    def _report_lag(self, consumer: Consumer) -> None:
        try:
            assignment = consumer.assignment()
            if not assignment:
                return
            lag: dict[str, int] = {}
            for tp in consumer.position(assignment):
                _, high = consumer.get_watermark_offsets(tp, cached=True)
                behind = high - tp.offset if tp.offset >= 0 and high >= 0 else 0
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, behind)
            for name, value in lag.items():
                metrics.CONSUMER_LAG.labels(name[len(self.prefix) :]).set(value)
        except KafkaException as exc:
            log.debug("lag not available: %s", exc)


def _reader(codecs: Codecs, name: str) -> None:
    """Make ``name``'s decoder. The reader schema is looked up, and registered only when the subject
    does not exist yet (nothing was ever written to it): a reader must not add schema versions."""
    try:
        codecs(name)
    except TwinError:
        codec_for(codecs.registry, by_real_name(name, codecs.prefix), logical_types=False)
        codecs(name)
