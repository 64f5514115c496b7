"""One publishing run: a source of records, encoded with the registry, paced, published, accounted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from producers.file_source import BadLine
from producers.pacing import Pacer
from producers.publisher import Publisher, PublishStats
from producers.records import EventMapper, Outgoing
from schemas import Codecs
from twin.clients import schema_registry
from twin.codec import ENCODE_FAILURES, AvroCodec
from twin.settings import Settings

if TYPE_CHECKING:
    from producers.plans import PlanFollower
    from sim import Simulator

MAX_KEPT_BAD_LINES = 10_000  # all are counted and reported; only this many are kept for the caller
# Unpaced, the loop looks at the clock and the stop flag once per this many events (~0.2 ms at full
# speed): a clock read per event would cost more than the bookkeeping it guards.
CHECK_EVERY = 64
FOLLOW_STEP_MS = 2_000


def simulator_records(
    simulator: Simulator,
    seed: int,
    start_ms: int,
    until_ms: int | None = None,
    run_id: str = "",
    follower: PlanFollower | None = None,
) -> Iterator[Outgoing]:
    """The simulator's events as records, endlessly unless ``until_ms`` (sim time) is given; ids
    and ``source`` of run ``run_id`` (see ``producers.runs``). With a ``follower``, new plans for the
    simulator's lines are adopted every ``FOLLOW_STEP_MS`` of simulated time (``producers.plans``)."""
    mapper = EventMapper(seed, run_id, correlation=follower.correlation if follower else None)
    horizon = until_ms
    # The model runs in 10-minute slices so an endless run stays lazy; following plans, in short
    # ones, so a plan takes effect within seconds of simulated time of its arrival.
    step_ms = FOLLOW_STEP_MS if follower is not None else 600_000
    now = start_ms
    while horizon is None or now < horizon:
        if follower is not None:
            follower.poll()
        stop = now + step_ms if horizon is None else min(horizon, now + step_ms)
        for event in simulator.run(until_ms=stop):
            yield mapper.map(event)
        now = stop


class ProduceSession:
    """Encodes and publishes records until the source ends, the time is up, or ``stop()``.

    Records name real topics: ``prefix`` (a namespace, e.g. a test's) + the catalog name.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        prefix: str = "",
        acked_ids: Path | None = None,
        **producer_overrides: Any,
    ) -> None:
        self.settings = settings
        self.prefix = prefix
        self._registry = schema_registry(settings)
        self._codecs = Codecs(self._registry, prefix=prefix)
        self.publisher = Publisher(settings, acked_ids=acked_ids, **producer_overrides)
        self.bad_lines: list[BadLine] = []
        self._stop = threading.Event()

    @property
    def stats(self) -> PublishStats:
        return self.publisher.stats

    def stop(self) -> None:
        self._stop.set()

    def codec(self, real_name: str) -> AvroCodec:
        """The codec of a topic of this session's namespace (made on first use, then kept)."""
        return self._codecs(real_name)

    def run(  # noqa: PLR0915 - the hot loop is inlined on purpose: a call per event costs more
        self,
        source: Iterable[Outgoing | BadLine],
        *,
        pacer: Pacer | None = None,
        duration_s: float | None = None,
        on_tick: Callable[[PublishStats], None] | None = None,
        on_bad: Callable[[BadLine], None] | None = None,
        tick_s: float = 0.5,
    ) -> PublishStats:
        """Publish until the source ends, ``duration_s`` passes or ``stop()``; ``on_tick`` every
        ``tick_s`` with the stats (counters synced, metrics pushed).

        The loop is the producer's hot path (~300k events/s): per event it only encodes and hands
        the bytes to the client. Counting ``produced``, the clock, the stop flag and serving
        delivery callbacks happen once per ``CHECK_EVERY`` events (every event while pacing, when
        each event waits anyway), so a stop or a tick is at most a fraction of a millisecond late.
        """
        publisher = self.publisher
        stats = publisher.stats
        produce = publisher.produce
        poll = publisher.poll
        serve_callbacks = publisher.serve_callbacks
        shared_callback = publisher.delivery_callback()
        writes_ids = publisher.writes_ids
        pace = pacer.wait if pacer is not None and pacer.paces else None
        check_every = 1 if pace is not None else CHECK_EVERY
        encoders: dict[str, Callable[[Any], bytes]] = {}
        stopping = self._stop.is_set
        clock = time.monotonic
        deadline = clock() + duration_s if duration_s else None
        next_tick = clock() + tick_s
        pending = 0  # produced but not yet added to stats.produced
        try:
            for item in source:
                if isinstance(item, BadLine):
                    self._reject(item, on_bad)
                    continue
                record = item.record
                if pace is not None:
                    pace(int(record["event_time"]))
                topic = item.topic
                encode = encoders.get(topic)
                if encode is None:
                    encode = encoders[topic] = self.codec(topic).encode_unchecked
                try:
                    value = encode(record)
                except ENCODE_FAILURES as exc:
                    self._reject(BadLine(0, str(self.codec(topic).encode_error(exc))), on_bad)
                    continue
                callback = publisher.delivery_callback(item.event_id) if writes_ids else shared_callback
                try:
                    produce(topic, value, item.key, -1, callback)
                except BufferError:
                    stats.produced += pending  # the wait serves callbacks: keep in_flight >= 0
                    pending = 0
                    publisher.send(topic, value, item.key, callback)
                pending += 1
                if pending < check_every:
                    continue
                stats.produced += pending
                pending = 0
                serve_callbacks(0)
                now = clock()
                if now >= next_tick:
                    next_tick = now + tick_s
                    poll(0)
                    if on_tick is not None:
                        on_tick(stats)
                if stopping() or (deadline is not None and now >= deadline):
                    break
        finally:
            stats.produced += pending
        return stats

    def _reject(self, bad: BadLine, on_bad: Callable[[BadLine], None] | None) -> None:
        self.publisher.stats.invalid += 1
        if len(self.bad_lines) < MAX_KEPT_BAD_LINES:  # a huge bad file must not grow memory unbounded
            self.bad_lines.append(bad)
        if on_bad is not None:
            on_bad(bad)

    def close(self, timeout: float = 120.0) -> int:
        remaining = self.publisher.close(timeout)
        self._registry.close()
        return remaining


def publish_catalog_records(settings: Settings, records: list[Outgoing], prefix: str = "") -> PublishStats:
    """Publish ``records`` (catalog topic names) under the topic namespace ``prefix`` and wait for
    every acknowledgement: how tests and benches fill a private namespace."""
    session = ProduceSession(settings, prefix=prefix)
    stats = session.run([Outgoing(prefix + o.topic, o.key, o.record) for o in records])
    session.publisher.flush(60)
    session.close()
    return stats
