"""The stream-processing worker: a faust-streaming app wiring the topics to the processors.

Two agents, each a ``Stage`` (pipelines/stage.py, walking the steps declared in
processors/stages.py) behind a checkpointing runner; both stages offer the runner one interface:

- ``machines`` consumes factory.telemetry, factory.production, factory.state and
  twin.alarm-commands (all keyed by machine id, co-partitioned, so one worker owns every stream of a
  machine) and publishes twin.anomalies, twin.alarms, twin.kpis (machine scope) and twin.state; it
  forwards the line's inputs to an internal topic keyed by line id.
- ``lines`` consumes that internal topic and publishes line-scope twin.kpis and schedule.requests.

Faust acks a message when an agent moves past it, even when the agent raised, and its ack
bookkeeping breaks around rebalances (pipelines/offsets.py says how). We use neither: streams run
with ``noack()``; every runner keeps its own ``OffsetBook`` (each partition's messages taken in
offset order, re-deliveries dropped, messages Faust skipped read from the broker directly) and
commits input offsets itself, only at a checkpoint, after (1) their outputs are acknowledged by
Kafka and (2) the state snapshots of their keys (with the input offsets they reflect) are
acknowledged on the changelog of a Faust table. A rebalance checkpoints and commits before the
partitions go, and so does a worker asked to stop. A crash between those steps replays inputs; the
stage skips the ones its restored state already reflects, so state is exactly-once and outputs
are at-least-once with deterministic ids. A record that cannot be decoded, or on which a step
raises, goes to ``<topic>.dlq`` with the reason (and the step's id); a failed delivery stops the
worker without committing, so a restart replays. A stored snapshot the worker cannot read stops it
with one line naming the format and version found.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, cast

import faust
from faust.types import TP as FaustTP
from prometheus_client import Counter, Histogram

from pipelines.offsets import TP as BookTP
from pipelines.offsets import OffsetBook, Verdict
from pipelines.stage import Inbound, LineStage, MachineStage, Outbound, Stage
from processors.stages import MACHINE_INPUTS, TwinConfig
from schemas import Codecs
from twin.clients import produce_blocking
from twin.errors import DeliveryFailedError, RegistryUnavailableError, SnapshotError
from twin.settings import Settings
from twin.topics import prefixed

if TYPE_CHECKING:
    from faust.types import TP, StreamT

log = logging.getLogger(__name__)
RELEASE_EVERY = 500
TAIL_QUIET_S = 10.0  # no input for this long: look for messages the client dropped at partitions' ends
TAIL_MAX = 10_000  # most such messages read by hand per partition and tick
LINE_PARTITIONS = 6  # the forwarded line-events topic (keyed by line)

EVENTS = Counter("twin_processor_events_total", "Input messages handled", ["stage"])
DEAD_LETTERS = Counter("twin_processor_dead_letters_total", "Input messages sent to a DLQ", ["stage"])
CLOCK_SKEW = Counter(
    "twin_processor_clock_skew_total",
    "Inputs stamped further ahead of the wall clock than allowed (sent to the DLQ, reason clock-skew)",
    ["stage"],
)
STEP_EMITTED = Counter(
    "twin_processor_emitted_total", "Derived events published, by the step that derived them", ["step"]
)
CHECKPOINT = Histogram(
    "twin_processor_checkpoint_seconds",
    "Time to make a batch durable (outputs, snapshots, offsets)",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CHECKPOINT_EVENTS = Histogram(
    "twin_processor_checkpoint_events",
    "Inputs acknowledged per checkpoint",
    ["stage"],
    buckets=(1, 10, 100, 500, 1000, 5000, 20000),
)


def twin_config(settings: Settings) -> TwinConfig:
    """The processors' configuration from the settings (rules file, layout, KPI windows)."""
    from processors.kpi import KpiConfig

    ps = settings.processors
    config = TwinConfig(
        kpi=KpiConfig(window_sizes_s=tuple(ps.kpi_windows_s), allowed_lateness_s=ps.kpi_lateness_s),
        max_clock_skew_s=ps.max_clock_skew_s,
    )
    if ps.rul_models is None or str(ps.rul_models).lower() != "none":
        from processors.maintenance.processor import MaintenanceConfig
        from processors.maintenance.store import load_models

        config.maintenance = MaintenanceConfig(
            models=load_models(ps.rul_models),
            alert_s=(ps.maintenance_horizon_s, ps.maintenance_horizon_s / 4),
        )
    config.maintenance_horizon_s = ps.maintenance_horizon_s
    if ps.rules_file is not None:
        from processors.alarms import AlarmRules

        config.rules = AlarmRules.from_yaml(ps.rules_file)
    if ps.factory_file is not None:
        from sim import load_plant_file

        config.plant = load_plant_file(ps.factory_file)
        config.line_order = config.plant.line_order()
        config.line_stages = config.plant.line_stages()
    return config


class Outputs:
    """Derived records and dead letters go out through librdkafka (idempotent, ``acks=all``).

    Faust's own producer costs a coroutine, a future and a queue hop per message (profiled: most
    of the worker's overhead beyond the processors); librdkafka batches in its own thread. Faust's
    producer still writes the table changelogs. ``confirm`` is the checkpoint's barrier.
    """

    def __init__(self, settings: Settings) -> None:
        from twin.clients import kafka_producer

        # Reports only for failed deliveries: a per-message callback costs Python work and the GIL
        # in whichever thread polls (``confirm`` flushes from a worker thread, contending with
        # the event loop); success is what ``flush`` returning 0 already says.
        conf = {
            "linger.ms": 5,
            "queue.buffering.max.messages": 500_000,
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
        }
        self.producer = kafka_producer(settings, **conf)
        self.errors: list[str] = []
        self._sent = 0

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(f"{msg.topic()}: {err}")

    def send(self, out: Outbound) -> None:
        produce_blocking(self.producer, out.topic, out.value, out.key, headers=out.headers)  # never drops
        self._sent += 1
        if not self._sent & 1023:
            self.producer.poll(0)

    async def confirm(self) -> None:
        """Until every record sent so far is acknowledged; raises if any was not."""
        remaining = await asyncio.to_thread(self.producer.flush, 120)
        if remaining or self.errors:
            msg = f"{remaining} outputs unacknowledged, {len(self.errors)} failed (first: {self.errors[:1]})"
            raise DeliveryFailedError(msg)


class Runner:
    """Feeds a stage from a Faust stream and checkpoints it."""

    def __init__(self, worker: Worker, stage: Stage, table: Any, every_events: int) -> None:
        self.worker = worker
        self.stage = stage
        self.table = table
        self.every_events = every_events
        self.pending: list[tuple[str, int, int]] = []  # (topic, partition, offset) handled, not durable
        self.book = OffsetBook()
        self._touched: set[int] = set()  # input partitions offered since the last release
        self._offered = 0
        self._buffered: Any = None  # the stream's input queue
        self.sent = False  # outputs sent since the last checkpoint
        self.stream: StreamT[Any] | None = None
        self.lock = asyncio.Lock()
        self.failed: BaseException | None = None
        self._last_input = time.monotonic()  # when the stream last handed over a message
        stage.lookup = self._lookup

    def _lookup(self, key: str) -> bytes | None:
        value = self.table.data.get(key)
        return bytes(value) if isinstance(value, bytes | bytearray) else None

    def caught_up(self, topic: str, partition: int) -> bool:
        """Whether this worker has fetched everything there is on ``topic[partition]`` right now."""
        return self.worker.caught_up(self.stage, topic, partition, self.book)

    async def agent(self, stream: StreamT[Any]) -> None:
        await self.worker.start_ticker()
        self.stream = stream = stream.noack()  # type: ignore[attr-defined]
        # Release a merge in batches, as a consume loop would: when the stream's buffer runs dry
        # or every RELEASE_EVERY offers, for the partitions offered since (not per message).
        self._buffered = buffered = stream.channel.queue  # type: ignore[attr-defined]
        book, stage, handle = self.book, self.stage, self._handle
        async for event in stream.events():
            message = event.message
            self._last_input = time.monotonic()
            tp = (message.topic, message.partition)
            if not book.knows(tp):
                book.start(tp, await self.worker.start_offset(tp))
            verdict = book.check(tp, message.offset)
            if verdict is Verdict.AHEAD:
                for missed in await self._missed(tp, message.offset):
                    if not await handle(missed):
                        return
                verdict = book.check(tp, message.offset)
            if verdict is Verdict.TAKE:  # not a re-delivery
                inbound = Inbound(
                    message.topic, message.partition, message.offset, message.key, message.value, event
                )
                if not await handle(inbound):
                    return
            if buffered.empty():
                stage.idle(time.monotonic())  # a merge's hold runs while we wait for input

    async def _handle(self, inbound: Inbound) -> bool:
        """Offer one message to the stage, send what it derives; False if that stopped the worker."""
        stage = self.stage
        while True:
            try:
                now = time.monotonic()
                outs = stage.offer(inbound, now)
                self._touched.add(inbound.partition)
                self._offered += 1
                batch_end = self._offered >= RELEASE_EVERY
                if batch_end or self._buffered is None or self._buffered.empty():
                    outs += stage.release(self.caught_up, now, self._touched)
                    self._touched = set()
                    self._offered = 0
                break
            except RegistryUnavailableError as exc:  # an outage: wait, never dead-letter
                log.warning("%s: %s; retrying in 2 s", stage.name, exc)
                await asyncio.sleep(2)
            except SnapshotError as exc:  # stored state this build cannot read: stop, say why
                await self.stop_on(exc)
                return False
        if outs:
            send = self.worker.send
            for o in outs:
                send(o)
            self.sent = True
        if stage.released:
            self.pending.extend((m.topic, m.partition, m.offset) for m in stage.released)
            stage.released.clear()
        if len(self.pending) >= self.every_events:
            await self.checkpoint()
        elif batch_end:
            # A full stream buffer is handed over without a pause: let the loop's timers and other
            # tasks (heartbeats, the client thread's keepalive) run between batches of a catch-up.
            await asyncio.sleep(0)
        return True

    async def catch_tail(self, topics: set[str]) -> None:
        """Read by hand what the client dropped at the end of a partition.

        ``_missed`` finds a gap when a later message arrives; messages Faust dropped after an
        assignment (see there) at the *end* of a partition have no later message, and would wait
        uncommitted and unprocessed until new input came (seen in CI: the last 2 state changes of
        a partition, after a rebalance). So once the worker has had no input for ``TAIL_QUIET_S``,
        every assigned partition whose end is beyond what the runner took is read up to its end,
        at most ``TAIL_MAX`` messages a time; whatever Faust delivers later is a duplicate.
        """
        if self.failed is not None or (self._buffered is not None and not self._buffered.empty()):
            return
        if time.monotonic() - self._last_input < TAIL_QUIET_S:
            return
        consumer = self.worker.app.consumer
        for ftp in sorted(consumer.assignment()):
            if ftp.topic not in topics:
                continue
            tp = (ftp.topic, ftp.partition)
            high = cast("int | None", consumer.highwater(ftp))
            if high is None:
                continue
            if not self.book.knows(tp):
                self.book.start(tp, await self.worker.start_offset(tp))
            expected = self.book.expected(tp)
            if expected >= high:
                continue
            end = min(high, expected + TAIL_MAX)
            log.info(
                "%s[%d]: offsets %d-%d were never handed over: reading them", tp[0], tp[1], expected, end - 1
            )
            for at, key, value in await self.worker.read_range(tp, expected, end):
                if self.book.check(tp, at) is Verdict.TAKE and not await self._handle(
                    Inbound(tp[0], tp[1], at, key, value)
                ):
                    return
            self._last_input = time.monotonic() - TAIL_QUIET_S  # the next tick looks again at once

    async def _missed(self, tp: BookTP, offset: int) -> list[Inbound]:
        """The messages of ``tp`` the client skipped before ``offset``, read from the broker.

        Faust (0.15.3) was seen to hand over a partition's messages from beyond its committed offset
        after a rebalance or a restart (it drops records fetched while partitions are paused), and
        its seeks back did not reliably take effect; so the runner reads the gap itself. Offsets the
        broker no longer has (retention) are skipped with a warning.
        """
        book = self.book
        expected = book.expected(tp)
        low = await self.worker.low_watermark(tp)
        if low > expected:
            log.warning(
                "%s[%d]: offsets %d-%d are no longer on the broker (retention); going on at %d",
                tp[0], tp[1], expected, low - 1, low,
            )  # fmt: skip
            book.skip_to(tp, min(low, offset))
            expected = book.expected(tp)
        if expected >= offset:
            return []
        log.info("%s[%d]: got offset %d, expected %d: reading the gap", tp[0], tp[1], offset, expected)
        found = await self.worker.read_range(tp, expected, offset)
        out = []
        for at, key, value in found:
            if book.check(tp, at) is Verdict.TAKE:
                out.append(Inbound(tp[0], tp[1], at, key, value))
        if book.expected(tp) != offset:  # not all there: the broker lost them meanwhile
            log.warning("%s[%d]: offsets %d-%d could not be read; going on at %d",
                        tp[0], tp[1], book.expected(tp), offset - 1, offset)  # fmt: skip
            book.skip_to(tp, offset)
        return out

    async def stop_on(self, exc: SnapshotError) -> None:
        """Stop the worker without committing, with one line naming what it could not read."""
        self.failed = exc
        log.critical("%s: cannot restore stored state, stopping: %s", self.stage.name, exc)
        await self.worker.crash(exc)

    async def checkpoint(self) -> None:
        """Make everything handled so far durable, then commit its offsets (see the module doc)."""
        if self.failed is not None:
            return
        async with self.lock:
            t0 = time.perf_counter()
            stage = self.stage
            if not await self._release_held():
                return
            if stage.released:
                self.pending.extend((m.topic, m.partition, m.offset) for m in stage.released)
                stage.released.clear()
            events, self.pending[:] = list(self.pending), []
            sent, self.sent = self.sent, False
            snapshots = self.stage.snapshots()
            if not events and not sent and not snapshots:
                return
            try:
                if sent:
                    await self.worker.outputs.confirm()
                changelog = []
                for snap in snapshots:
                    self.table.data[snap.key] = snap.data
                    changelog.append(self.table.send_changelog(snap.partition, snap.key, snap.data))
                if changelog:
                    await self.worker.app.producer.flush()
                    for fut in changelog:
                        await fut  # raises the delivery error, if any
            except Exception as exc:
                self.failed = exc
                log.critical("%s: checkpoint failed, stopping without acking: %s", self.stage.name, exc)
                await self.worker.crash(DeliveryFailedError(str(exc)))
                return
            self.book.done(events)
            offsets = self.book.commits()
            if offsets and await self.worker.commit(offsets):
                self.book.committed(offsets)
            self._metrics(len(events), time.perf_counter() - t0)

    async def _release_held(self) -> bool:
        """Process what the stage's merge still holds back; False if that stopped the worker."""
        stage = self.stage
        if not stage.queued:
            return True
        try:
            released = stage.release(self.caught_up, time.monotonic())
        except SnapshotError as exc:
            await self.stop_on(exc)
            return False
        for o in released:
            self.worker.send(o)
            self.sent = True
        return True

    def _metrics(self, acked: int, seconds: float) -> None:
        name = self.stage.name
        stats = self.stage.stats
        seen = self.worker.reported.setdefault(name, {})
        counters = (("processed", EVENTS), ("dead_letters", DEAD_LETTERS), ("clock_skew", CLOCK_SKEW))
        for key, counter in counters:
            delta = stats[key] - seen.get(key, 0)
            if delta:
                counter.labels(name).inc(delta)
                seen[key] = stats[key]
        for step, total in self.stage.step_emitted.items():
            delta = total - seen.get(f"step:{step}", 0)
            if delta:
                STEP_EMITTED.labels(step).inc(delta)
                seen[f"step:{step}"] = total
        CHECKPOINT.labels(name).observe(seconds)
        CHECKPOINT_EVENTS.labels(name).observe(acked)


class Worker:
    """The Faust app with both agents; ``run()`` blocks until SIGINT/SIGTERM."""

    def __init__(self, settings: Settings, config: TwinConfig | None = None) -> None:
        from twin.clients import schema_registry

        ps = settings.processors
        self.settings = settings
        self.config = config or twin_config(settings)
        self.prefix = ps.topic_prefix
        self.catalog = {t.name: t for t in prefixed(ps.topic_prefix)}
        self.reported: dict[str, dict[str, int]] = {}
        self.outputs = Outputs(settings)
        self.codecs = Codecs(schema_registry(settings), prefix=self.prefix, logical_types=False)
        datadir = (
            settings.infra.state_dir / "faust" / ps.app_id
        )  # Faust wants a directory; tables stay in memory
        datadir.parent.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            ps.app_id,
            broker=[f"kafka://{h.strip()}" for h in settings.kafka.bootstrap_servers.split(",") if h.strip()],
            broker_credentials=_credentials(settings),
            store="memory://",
            datadir=str(datadir),
            web_enabled=False,
            autodiscover=False,
            topic_partitions=6,
            topic_replication_factor=1,
            broker_session_timeout=ps.session_timeout_s,
            broker_heartbeat_interval=max(1.0, ps.session_timeout_s / 4),
            broker_commit_interval=ps.checkpoint_interval_s,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            producer_linger_ms=5,
            table_standby_replicas=0,
            consumer_max_fetch_size=ps.fetch_max_bytes,
            broker_max_poll_records=ps.max_poll_records,
            stream_buffer_maxsize=ps.stream_buffer,
            stream_wait_empty=False,  # the runners commit offsets themselves (see the module doc)
            logging_config=None,
        )
        app = self.app
        self.line_topic_name = line_topic_name = f"{ps.app_id}-{self.prefix}line-events"
        self.machine_stage = MachineStage(self.config, self.codecs, line_topic_name, self.prefix)
        self.line_stage = LineStage(self.config, self.codecs, self.prefix)
        sources = app.topic(
            *[self.prefix + name for name in MACHINE_INPUTS],
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            acks=True,
        )
        line_topic = app.topic(
            line_topic_name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=LINE_PARTITIONS,
            internal=True,
        )
        machine_table = app.Table("machine-twins", partitions=6, key_type=str, value_type=bytes)
        line_table = app.Table("line-twins", partitions=6, key_type=str, value_type=bytes)
        self.machines = Runner(self, self.machine_stage, machine_table, ps.checkpoint_events)
        self.lines = Runner(self, self.line_stage, line_table, ps.checkpoint_events)
        app.agent(sources, name="machines")(self.machines.agent)
        app.agent(line_topic, name="lines")(self.lines.agent)
        # Checkpoints run from a plain task, not ``app.timer``, so the last one runs when the worker
        # is asked to stop: after Faust has paused its consumer, before it leaves the group.
        self._interval = ps.checkpoint_interval_s
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = False
        self._offsets_client: Any = None  # a confluent-kafka consumer for committed offsets, lazily
        self._gap_client: Any = None  # one that reads what Faust skipped (Runner._missed)
        app.on_before_shutdown.connect(self._stop_ticker)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    def caught_up(self, stage: Stage, topic: str, partition: int, book: OffsetBook) -> bool:
        """Whether ``stage`` has been handed everything there is on ``topic[partition]`` right now."""
        consumer = self.app.consumer
        tp = FaustTP(topic, partition)
        high = cast("int | None", consumer.highwater(tp))  # None until a fetch response arrived
        if high is None:
            return False
        seen = stage.last_offset.get((topic, partition))
        if seen is not None:
            return seen + 1 >= high
        # Nothing received from it yet: caught up if it is empty or was read to its end before.
        committed = book.last_committed((topic, partition))
        if committed is None:  # Faust's position from its seek at assignment (no public accessor)
            committed = consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
        return high == 0 or (committed is not None and committed >= high)

    def _offsets(self) -> Any:
        if self._offsets_client is None:
            from twin.clients import kafka_consumer

            # Never subscribes, so it never joins the group: it only reads the group's offsets.
            self._offsets_client = kafka_consumer(self.settings, self.settings.processors.app_id)
        return self._offsets_client

    async def start_offset(self, tp: BookTP) -> int:
        """Where reading ``tp`` starts: its committed offset, or its first one if none is."""
        from confluent_kafka import TopicPartition

        def read() -> int:
            client = self._offsets()
            (found,) = client.committed([TopicPartition(tp[0], tp[1])], timeout=30)
            if found.offset >= 0:
                return int(found.offset)
            return int(client.get_watermark_offsets(TopicPartition(tp[0], tp[1]), timeout=30)[0])

        return await asyncio.to_thread(read)

    async def low_watermark(self, tp: BookTP) -> int:
        """The oldest offset the broker still has on ``tp``."""
        from confluent_kafka import TopicPartition

        def read() -> int:
            return int(self._offsets().get_watermark_offsets(TopicPartition(tp[0], tp[1]), timeout=30)[0])

        return await asyncio.to_thread(read)

    async def read_range(
        self, tp: BookTP, start: int, end: int
    ) -> list[tuple[int, bytes | None, bytes | None]]:
        """(offset, key, value) of ``tp``'s messages from ``start`` up to ``end`` (excluded)."""
        from confluent_kafka import TopicPartition

        def read() -> list[tuple[int, bytes | None, bytes | None]]:
            if self._gap_client is None:
                from twin.clients import kafka_consumer

                # Its own group id: it is assigned partitions by hand and never commits.
                self._gap_client = kafka_consumer(self.settings, f"{self.settings.processors.app_id}-gaps")
            client = self._gap_client
            client.assign([TopicPartition(tp[0], tp[1], start)])
            out: list[tuple[int, bytes | None, bytes | None]] = []
            deadline = time.monotonic() + 60
            try:
                while time.monotonic() < deadline:
                    batch = client.consume(min(1000, end - start), timeout=1.0)
                    for m in batch:
                        if m.error() is None and m.offset() < end and (m.topic(), m.partition()) == tp:
                            out.append((m.offset(), m.key(), m.value()))
                    if not batch and out and out[-1][0] >= end - 1:
                        break
                    if out and out[-1][0] >= end - 1:
                        break
            finally:
                client.unassign()
            return out

        return await asyncio.to_thread(read)

    async def commit(self, offsets: dict[BookTP, int]) -> bool:
        """Commit input offsets for the group; False where a rebalance took the partitions first.

        Through the driver's commit (``_commit``: aiokafka's, by this worker's group member), not
        Faust's ``commit()``, which commits from its own ack bookkeeping.
        """
        consumer = self.app.consumer
        return bool(await consumer._commit({FaustTP(t, p): o for (t, p), o in offsets.items()}))  # type: ignore[attr-defined]

    def send(self, out: Outbound) -> None:
        self.outputs.send(out)

    async def _tick(self, *, tails: bool = False) -> None:
        """Checkpoint both runners; ``tails``: first read what the client dropped at partition ends
        (only from the periodic tick: not while stopping or handing partitions over)."""
        inputs = {self.prefix + n for n in MACHINE_INPUTS}
        for runner, topics in ((self.machines, inputs), (self.lines, {self.line_topic_name})):
            if tails and not self._stopping:
                await runner.catch_tail(topics)
            await runner.checkpoint()

    async def start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.ensure_future(self._tick_forever())

    async def _tick_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._interval)
            try:
                await self._tick(tails=True)
            except Exception:  # never let the checkpoint loop die silently: the worker would stall
                log.exception("checkpoint failed")
                await self.crash(DeliveryFailedError("checkpoint loop failed"))
                return

    async def _stop_ticker(self, app: Any, **_: Any) -> None:
        self._stopping = True
        try:
            await self._tick()  # the last checkpoint: what was handled is committed, not replayed
        except Exception:
            log.exception("last checkpoint failed; the next worker replays from the one before")
        for client in (self._offsets_client, self._gap_client):
            if client is not None:
                client.close()

    async def _on_revoked(self, app: Any, revoked: set[TP], **_: Any) -> None:
        await self._tick()
        for runner, topics in (
            (self.machines, {self.prefix + n for n in MACHINE_INPUTS}),
            (self.lines, {self.line_topic_name}),
        ):
            gone = {(tp.topic, tp.partition) for tp in revoked if tp.topic in topics}
            runner.book.forget(gone)
            runner.stage.drop_partitions({p for _, p in gone})

    async def crash(self, exc: BaseException) -> None:
        await self.app.crash(exc)

    def run(self, loglevel: str = "WARNING") -> None:
        """Run the worker until a signal stops it."""
        from pipelines.topics import ensure_internal_topic

        ensure_internal_topic(self.settings, self.line_topic_name, LINE_PARTITIONS)
        worker = faust.Worker(self.app, loglevel=loglevel, quiet=True)
        # No start-up spinner: Faust drives it from a DEBUG handler on the root logger and leaves
        # the root at DEBUG, so every debug call in aiokafka, mode and Faust built a log record
        # for the life of the worker (~5% of the event loop's time at a live 1,200 events/s).
        worker.spinner = None
        worker.execute_from_commandline()


def _credentials(settings: Settings) -> Any:
    """Faust credentials from the Kafka settings (SASL and/or TLS); None for PLAINTEXT."""
    import ssl

    k = settings.kafka
    protocol = k.security_protocol.value
    if protocol == "PLAINTEXT":
        return None
    context = None
    if "SSL" in protocol:
        context = ssl.create_default_context(cafile=str(k.ssl_ca_location) if k.ssl_ca_location else None)
        if k.ssl_certificate_location and k.ssl_key_location:
            password = k.ssl_key_password.get_secret_value() if k.ssl_key_password else None
            context.load_cert_chain(str(k.ssl_certificate_location), str(k.ssl_key_location), password)
    if "SASL" in protocol:
        password = k.sasl_password.get_secret_value() if k.sasl_password else ""
        return faust.SASLCredentials(
            username=k.sasl_username or "",
            password=password,
            ssl_context=context,
            mechanism=k.sasl_mechanism or "PLAIN",
        )
    return faust.SSLCredentials(context)
