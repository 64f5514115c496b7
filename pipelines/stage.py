"""The transport-free core of the processing workers: bytes in, bytes out, snapshots with positions.

A *stage* owns the steps (processors/stages.py: ``MACHINE_STEPS``, ``LINE_STEPS``) for the keys of
the partitions it is given (machines for the machine stage, lines for the line stage). For every
input message it decodes, skips what its state already reflects (a replay after a crash), walks the
steps, and returns the encoded output messages, or a dead letter with the reason and the failing
step. Both stages offer one interface (``offer``, ``release``, ``idle``, ``snapshots``): the Faust
app (``pipelines.processing``) and the benchmark's plain confluent-kafka loop drive them the same
way, so they run the same logic.

Exactly-once *state*, at-least-once *output*: a stage's snapshot of a key records, for every input
partition, the offset of the last message folded into it. A worker writes snapshots only after the
outputs of those messages are acknowledged by Kafka, and commits input offsets only after the
snapshots are, so after a crash the replayed messages up to the snapshot are skipped (their outputs
exist) and the rest are processed again from the snapshot, giving the same derived ids.
"""

from __future__ import annotations

import json
import logging
import time
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import REGISTRY
from prometheus_client.core import HistogramMetricFamily

from pipelines.stage_snapshot import dump_stage_snapshot, load_stage_snapshot
from processors.base import Emit, Record
from processors.derived_state import SOURCE as DERIVED_STATE
from processors.stages import LINE_INPUTS, LINE_STEPS, MACHINE_STEPS, TwinConfig
from processors.steps import Chain, Step
from twin.dlq import Headers, dead_letter_headers
from twin.errors import DecodeError, ProcessingError, SnapshotError
from twin.topics import ALARM_COMMANDS, KPIS, PRODUCTION, STATE, TELEMETRY, dlq_name
from twin.units import human_duration

log = logging.getLogger(__name__)

MERGED = (TELEMETRY, PRODUCTION, STATE)  # merged by event time per partition
ADVANCE_STEP_MS = 1000  # event-time grid on which windows close and duration rules fire

STEP_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05, 0.25)


class StepTimes:
    """``twin_processor_step_seconds{step}``: a histogram of how long each step's calls take, for an
    input record or an advance of event time.

    Kept in plain lists and read by Prometheus at scrape time: a ``prometheus_client.Histogram``
    observation (a lock, its bookkeeping) costs about 1 us, several times what the cheapest steps
    take, and a machine input makes about eight step calls. A scrape may see a call counted in its
    bucket but not yet in the sum: harmless for a rate.
    """

    name = "twin_processor_step_seconds"

    def __init__(self) -> None:
        self._steps: dict[str, tuple[list[int], list[float]]] = {}

    def slots(self, step: str) -> tuple[list[int], list[float]]:
        """The step's bucket counts (one per bound, then +Inf) and its one-element sum."""
        found = self._steps.get(step)
        if found is None:
            found = self._steps[step] = ([0] * (len(STEP_BUCKETS) + 1), [0.0])
        return found

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            self.name,
            "Time one processing step takes for an input or an advance of event time",
            labels=["step"],
        )
        for step, (counts, total) in sorted(self._steps.items()):
            running, buckets = 0, []
            for bound, n in zip((*map(str, STEP_BUCKETS), "+Inf"), list(counts), strict=True):
                running += n
                buckets.append((bound, running))
            family.add_metric([step], buckets, total[0])
        yield family

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, "", labels=["step"])


STEP_TIMES = StepTimes()
REGISTRY.register(STEP_TIMES)


class TopicCodec(Protocol):
    """Decodes a topic's values to plain records and encodes records (``twin.codec.AvroCodec``)."""

    def decode(self, data: bytes | None) -> dict[str, Any]: ...

    def encode(self, record: dict[str, Any]) -> bytes: ...


Codecs = Callable[[str], TopicCodec]
"""A topic's codec by real topic name (``schemas.Codecs`` with ``logical_types=False``)."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One consumed message, whatever the client; ``token`` is the client's handle for acking it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    token: Any = None


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to produce. ``partition`` None: the producer's key partitioner decides."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None
    partition: int | None = None


@dataclass
class Snapshot:
    """A key's step state plus the input positions it reflects."""

    key: str
    partition: int
    data: bytes


@dataclass
class _Slot:
    """One key's steps and bookkeeping."""

    chain: Chain
    partition: int
    positions: dict[str, int] = field(default_factory=dict)  # "topic:partition" -> last folded offset
    dedup: dict[str, Any] = field(default_factory=dict)  # stage-specific dedup state
    dirty: bool = False


class Stage:
    """Shared machinery: slots by key, positions, the step walk, dead letters, counters.

    The runners' interface: ``offer`` each consumed message, ``release`` what a merge holds back
    (at batch ends and checkpoints), ``idle`` while waiting for input; the handled messages collect
    in ``released`` (to ack), changed keys' state in ``snapshots()``.
    """

    name = "stage"
    steps: tuple[Step, ...] = ()
    snapshot_format = "stage"
    legacy_parts: Mapping[str, str] = {}
    """Part names of the version 1 (FTW1) snapshot -> step ids; other parts are dropped unread."""

    def __init__(self, config: TwinConfig, codecs: Codecs, prefix: str = "") -> None:
        self.config = config
        self.codecs = codecs
        self.prefix = prefix  # topic namespace: real name = prefix + catalog name
        self.slots: dict[str, _Slot] = {}
        self.stats: Counter[str] = Counter()
        self.step_emitted: Counter[str] = Counter()  # derived records published, by step id
        self._pending: Counter[str] = Counter()  # by step, for the input being handled
        self.watermarks: dict[int, int] = {}  # input partition -> max event time seen
        self._advanced: dict[int, int] = {}
        self.queued = 0  # messages offered but held back (the machine stage's merge)
        self.released: list[Inbound] = []  # handled since the caller last took them (to ack)
        self.last_offset: dict[tuple[str, int], int] = {}  # newest offset received per topic partition
        self.lookup: Callable[[str], bytes | None] = lambda _key: None  # stored snapshot of a key
        self.wall: Callable[[], float] = time.time  # the wall clock that bounds event time

    # -- the runners' interface ----------------------------------------------------------------
    def offer(self, msg: Inbound, now: float) -> list[Outbound]:
        """Take ``msg`` (received at wall time ``now``); returns what can be produced now."""
        self.last_offset[(msg.topic, msg.partition)] = msg.offset
        out = self.handle(msg)
        self.released.append(msg)  # after: a registry outage raises, and the caller offers it again
        return out

    def release(
        self,
        caught_up: Callable[[str, int], bool],
        now: float,
        partitions: Iterable[int] | None = None,
    ) -> list[Outbound]:
        """Process what the stage held back and may release now (nothing, unless it merges)."""
        return []

    def idle(self, now: float) -> None:
        """The caller has handed over everything it has and waits for input from wall time ``now``."""

    def handle(self, msg: Inbound) -> list[Outbound]:
        """Process one message now; its outputs (or its dead letter)."""
        raise NotImplementedError

    # -- slots -------------------------------------------------------------------------------

    def slot(self, key: str, partition: int) -> _Slot:
        found = self.slots.get(key)
        if found is not None:
            found.partition = partition
            return found
        slot = _Slot(Chain(key, self.steps, self.config, self._instrument), partition)
        stored = self.lookup(key)
        if stored:
            self._restore(key, slot, stored)
            self.stats["restored"] += 1
        self.slots[key] = slot
        return slot

    def _enter(self, key: str, partition: int) -> tuple[_Slot, list[Emit]]:
        """The key's slot, and what bringing a slot new to this stage up to its partition's event
        time derives (counted).

        A key is loaded (restored) at its first message after a start or a rebalance, but the other
        keys of its partition may have moved event time on before that: in the first run this key
        was advanced with them, so it is advanced now, before its message, or a replay would derive
        different records (a twin state shown with an older OEE) under the same ids.
        """
        slot = self.slots.get(key)
        if slot is not None:
            slot.partition = partition
            return slot, []
        slot = self.slot(key, partition)
        mark = self._advanced.get(partition)
        emits = slot.chain.advance(mark) if mark is not None else []
        if emits:
            slot.dirty = True
        self._count(emits)
        return slot, emits

    def _replayed(self, partition: int, event_time: int | None, lag_ms: int = 0) -> list[Emit]:
        """A message the state already reflects, replayed: in the first run it moved the partition's
        event time on, so it does now (the keys loaded since are advanced as they were then)."""
        self._note_time(partition, event_time)
        emits = self._advance(partition, lag_ms)
        self._count(emits)
        return emits

    def _outputs(self, emits: list[Emit]) -> list[Outbound]:
        """The messages that publish ``emits``."""
        return [self.encode(e) for e in emits]

    def _restore(self, key: str, slot: _Slot, data: bytes) -> None:
        """A stored snapshot into a new slot; a snapshot we cannot read is a ``SnapshotError``."""
        try:
            state = load_stage_snapshot(data, self.snapshot_format, self.legacy_parts)
            slot.chain.restore(state.steps)
        except SnapshotError as exc:
            msg = f"{self.name} stage, key {key!r}: {exc}"
            raise SnapshotError(msg) from None
        if state.migrated_from is not None:
            note = ""
            if state.dropped:
                why = ", the anomaly detectors relearn what is normal" if "anomaly" in state.dropped else ""
                note = f"; left unread: {', '.join(state.dropped)} (those steps start over{why})"
            log.warning(
                "%s stage, key %r: migrated a version %d snapshot%s",
                self.name,
                key,
                state.migrated_from,
                note,
            )
        unknown = sorted(set(state.steps) - set(slot.chain.processors))
        if unknown:
            log.warning("%s stage, key %r: snapshot of unknown steps %s ignored", self.name, key, unknown)
        slot.positions = state.positions
        slot.dedup = state.dedup

    def snapshots(self) -> list[Snapshot]:
        """Snapshots of every key changed since the last call (and marks them clean)."""
        out: list[Snapshot] = []
        for key, slot in self.slots.items():
            if slot.dirty:
                data = dump_stage_snapshot(
                    self.snapshot_format, key, slot.positions, slot.dedup, slot.chain.snapshots()
                )
                out.append(Snapshot(key, slot.partition, data))
                slot.dirty = False
        return out

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        """Forget the keys of partitions this worker no longer owns (their owner restores them)."""
        gone = set(partitions)
        for key in [k for k, s in self.slots.items() if s.partition in gone]:
            del self.slots[key]
        for p in gone:
            self.watermarks.pop(p, None)
            self._advanced.pop(p, None)
        for tp in [tp for tp in self.last_offset if tp[1] in gone]:
            del self.last_offset[tp]

    # -- steps -------------------------------------------------------------------------------
    def _instrument(self, step_id: str, fn: Callable[..., list[Emit]]) -> Callable[..., list[Emit]]:
        """Time each call of a step and note what it derived (counted once the input succeeded)."""
        counts, total = STEP_TIMES.slots(step_id)
        pending = self._pending
        clock = time.perf_counter
        bounds, bucket = STEP_BUCKETS, bisect_left

        def timed(*args: Any) -> list[Emit]:
            t0 = clock()
            out = fn(*args)
            seconds = clock() - t0
            counts[bucket(bounds, seconds)] += 1
            total[0] += seconds
            if out:
                pending[step_id] += len(out)
            return out

        return timed

    def _walk(self, slot: _Slot, msg: Inbound, topic: str, record: Record) -> list[Emit] | Outbound:
        """The step walk for one input: what it derived, or its dead letter."""
        try:
            return slot.chain.process_one(topic, record)
        except ProcessingError as exc:  # a processor bug must not stop the line: dead-letter, say why
            log.exception(
                "step %r failed on %s[%d]@%d: %s", exc.step, msg.topic, msg.partition, msg.offset, exc
            )
            self._pending.clear()
            self.stats["processing_errors"] += 1
            self.stats["dead_letters"] += 1
            return self.dead_letter(msg, exc)

    def _count(self, emits: list[Emit]) -> None:
        """Count an input's derived records, once, when they are sure to go out."""
        self.stats["emitted"] += len(emits)
        if self._pending:
            self.step_emitted.update(self._pending)
            self._pending.clear()

    # -- helpers -----------------------------------------------------------------------------
    def decode(self, msg: Inbound) -> Record | Outbound:
        """The record, or the dead letter for it. A registry outage raises (retry, never DLQ)."""
        try:
            return self.codecs(msg.topic).decode(msg.value)
        except DecodeError as exc:
            self.stats["dead_letters"] += 1
            return self.dead_letter(msg, exc)

    def dead_letter(self, msg: Inbound, error: BaseException) -> Outbound:
        headers = dead_letter_headers(msg.topic, msg.partition, msg.offset, error)
        return Outbound(dlq_name(msg.topic), msg.key, msg.value, headers)

    def encode(self, emit: Emit) -> Outbound:
        real = self.prefix + emit.topic
        return Outbound(real, emit.key.encode(), self.codecs(real).encode(emit.record))

    def _advance(self, partition: int, lag_ms: int = 0) -> list[Emit]:
        """Let event time move on for the keys of ``partition`` when its watermark crosses a step.

        Called after each input, at grid points of event time (not at checkpoints, which fall
        wherever wall time puts them): a replay then closes windows and fires duration rules after
        the same inputs as the first run, so derived records come out with the same content.
        """
        wm = self.watermarks.get(partition)
        if wm is None:
            return []
        mark = (wm - lag_ms) // ADVANCE_STEP_MS * ADVANCE_STEP_MS
        if self._advanced.get(partition) == mark:
            return []
        self._advanced[partition] = mark
        emitted: list[Emit] = []
        for slot in self.slots.values():
            if slot.partition == partition:
                emits = slot.chain.advance(mark)
                if emits:
                    slot.dirty = True
                    emitted.extend(emits)
        return emitted

    def _seen(self, slot: _Slot, msg: Inbound) -> bool:
        tp = f"{msg.topic}:{msg.partition}"
        last = slot.positions.get(tp)
        if last is not None and msg.offset <= last:
            self.stats["replayed_skipped"] += 1
            return True
        return False

    def _fold(self, slot: _Slot, msg: Inbound, event_time: int | None) -> None:
        slot.positions[f"{msg.topic}:{msg.partition}"] = msg.offset
        slot.dirty = True
        self._note_time(msg.partition, event_time)

    def _note_time(self, partition: int, event_time: int | None) -> None:
        if event_time is not None and event_time > self.watermarks.get(partition, -(2**62)):
            self.watermarks[partition] = event_time


class IdleClock:
    """Seconds a worker has spent waiting for input: the clock on which a merge hold runs out.

    A queue that stays empty while the worker works through a backlog is not silent: its messages
    are fetched, or queued behind the ones being processed. Measured in wall time, a catch-up that
    took longer than the hold per partition released a partition's state changes up to an hour
    ahead of its telemetry (seen in bench/processing_throughput.py: in slow backlog rounds,
    7,000-14,000 readings processed out of event-time order).
    """

    __slots__ = ("_idle", "_since")

    def __init__(self) -> None:
        self._idle = 0.0
        self._since: float | None = None  # wall time the current wait began

    def wait(self, now: float) -> None:
        """The worker has processed everything it has and waits for input from ``now`` on."""
        if self._since is None:
            self._since = now

    def resume(self, now: float) -> float:
        """Input arrived at wall time ``now``; returns the clock."""
        if self._since is not None:
            self._idle += max(0.0, now - self._since)
            self._since = None
        return self._idle

    def read(self, now: float) -> float:
        """The clock at wall time ``now`` (a wait in progress counts)."""
        return self._idle + (max(0.0, now - self._since) if self._since is not None else 0.0)


class MachineStage(Stage):
    """Per machine: ``MACHINE_STEPS`` (twin state, alarms, anomalies, machine KPIs); forwards the line
    stage's inputs (``LINE_INPUTS``) to ``line_topic``, keyed by line."""

    name = "machines"
    steps = MACHINE_STEPS
    snapshot_format = "machine-stage"
    legacy_parts: Mapping[str, str] = {"state": "state", "alarms": "alarms", "kpis": "kpi"}

    def __init__(
        self, config: TwinConfig, codecs: Codecs, line_topic: str, prefix: str = "", max_hold_s: float = 5.0
    ) -> None:
        super().__init__(config, codecs, prefix)
        self.line_topic = line_topic
        self.max_hold_s = max_hold_s
        self.queues: dict[tuple[int, str], deque[tuple[int, Inbound, Record]]] = {}
        self.clock = IdleClock()
        self.last_seen: dict[tuple[int, str], float] = {}  # idle clock at the newest offer per queue
        self.first_seen: dict[int, float] = {}  # idle clock at the first offer per partition

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for key in [k for k in self.queues if k[0] in gone]:
            self.queued -= len(self.queues.pop(key))
        super().drop_partitions(gone)

    # -- event-time merge of the co-partitioned inputs -------------------------------------------
    # Kafka orders each partition, not the topics among themselves: catching up after a restart,
    # a fetch can hand over an hour of state changes before the telemetry of that hour. Rules that
    # combine state and telemetry need them in event-time order, so each partition's telemetry,
    # production and state queues are merged by event time (each queue stays in offset order). The
    # head is released once every other queue is non-empty (so no earlier event can still come from
    # it) or caught up with its partition's end, or silent for ``max_hold_s``: silent while the
    # worker waited for input (``idle``), not while it was busy (see ``IdleClock``). Commands are
    # operator actions in processing time: they pass straight through.
    def idle(self, now: float) -> None:
        """The caller has handed over everything it has and waits for input from wall time ``now``."""
        self.clock.wait(now)

    def offer(self, msg: Inbound, now: float) -> list[Outbound]:
        """Queue ``msg`` (received at wall time ``now``) for the merge; returns its dead letter at
        once if it cannot be decoded."""
        hold = self.clock.resume(now)
        self.last_offset[(msg.topic, msg.partition)] = msg.offset
        decoded = self.decode(msg)
        if isinstance(decoded, Outbound):
            self.released.append(msg)
            return [decoded]
        topic = msg.topic[len(self.prefix) :]
        if topic not in MERGED:
            self.released.append(msg)
            return self.handle_decoded(msg, decoded)
        skew = self._from_the_future(decoded)
        if skew is not None:
            self.released.append(msg)
            return [self.dead_letter(msg, skew)]
        self.last_seen[(msg.partition, topic)] = hold
        self.first_seen.setdefault(msg.partition, hold)
        queue = self.queues.setdefault((msg.partition, topic), deque())
        queue.append((int(decoded.get("event_time") or 0), msg, decoded))
        self.queued += 1
        return []

    def release(
        self,
        caught_up: Callable[[str, int], bool],
        now: float,
        partitions: Iterable[int] | None = None,
    ) -> list[Outbound]:
        """Process every queued message the merge allows at wall time ``now``; the messages go to
        ``released``.

        ``partitions``: only these input partitions (those offered a message since the last
        release; the others only change with time, which a full release at each checkpoint covers).
        """
        hold = self.clock.read(now)
        out: list[Outbound] = []
        if partitions is None:
            partitions = {p for p, _ in self.queues}
        done: dict[tuple[str, int], bool] = {}  # caught_up answers cannot change within one call

        def fetched_all(topic: str, p: int) -> bool:
            key = (topic, p)
            answer = done.get(key)
            if answer is None:
                answer = done[key] = caught_up(self.prefix + topic, p)
            return answer

        for partition in partitions:
            queues = [(t, self.queues.get((partition, t))) for t in MERGED]
            while True:
                heads = [(q[0][0], t, q) for t, q in queues if q]
                if not heads:
                    break
                _, topic, queue = min(heads, key=lambda h: h[0])
                # An empty queue of a partition not read to its end blocks, unless it has been silent
                # for max_hold_s of waiting for input (a stalled source must not stop the others).
                if any(
                    not q
                    and not fetched_all(t, partition)
                    and hold - self.last_seen.get((partition, t), self.first_seen[partition])
                    < self.max_hold_s
                    for t, q in queues
                    if t != topic
                ):
                    break
                _, msg, record = queue.popleft()
                self.queued -= 1
                self.released.append(msg)
                out.extend(self.handle_decoded(msg, record))
        return out

    def handle(self, msg: Inbound) -> list[Outbound]:
        """Process one message now, without the merge (a single ordered input)."""
        decoded = self.decode(msg)
        if isinstance(decoded, Outbound):
            return [decoded]
        skew = self._from_the_future(decoded) if msg.topic[len(self.prefix) :] in MERGED else None
        if skew is not None:
            return [self.dead_letter(msg, skew)]
        return self.handle_decoded(msg, decoded)

    def _from_the_future(self, record: Record) -> DecodeError | None:
        """The ``clock-skew`` error of an input stamped further ahead of the wall clock than the
        allowed skew (``max_clock_skew_s``), else None. Such an input would move its partition's
        watermark into the future: every other machine's windows and duration rules would then
        treat their real-time events as late. A device with a wrong clock loses its own events to
        the DLQ (counted, kept there with the reason), not the whole line's."""
        event_time = record.get("event_time")
        if not isinstance(event_time, int):
            return None
        now_ms = int(self.wall() * 1000)
        ahead_ms = event_time - now_ms
        if ahead_ms <= self.config.max_clock_skew_s * 1000:
            return None
        self.stats["clock_skew"] += 1
        self.stats["dead_letters"] += 1
        return DecodeError(
            "clock-skew",
            f"event_time {event_time} is {human_duration(ahead_ms / 1000)} ahead of this worker's clock "
            f"(allowed: {human_duration(self.config.max_clock_skew_s)}, TWIN_PROCESSORS__MAX_CLOCK_SKEW_S); "
            "check the source's clock",
        )

    def handle_decoded(self, msg: Inbound, record: Record) -> list[Outbound]:
        machine_id = msg.key.decode("utf-8", "replace") if msg.key else str(record.get("machine_id", ""))
        if not machine_id:
            self.stats["dead_letters"] += 1
            return [self.dead_letter(msg, DecodeError("body", "record has no machine_id and no key"))]
        self._pending.clear()
        slot, early = self._enter(machine_id, msg.partition)
        out = self._outputs(early)
        topic = msg.topic[len(self.prefix) :]
        # An operator's command carries the operator's clock, not the machine's: it must not move the
        # partition's event-time watermark (that would close windows and fire duration rules early).
        event_time = None if topic == ALARM_COMMANDS else record.get("event_time")
        if self._seen(slot, msg):
            return out + self._outputs(self._replayed(msg.partition, event_time))
        if topic == STATE and record.get("source") == DERIVED_STATE:
            # A state this stage derived from readings, back from Kafka: its steps took it when it
            # was derived (a backlog of readings would otherwise run far ahead of it).
            self._fold(slot, msg, event_time)
            self.stats["derived_returned"] += 1
            return out + self._outputs(self._advance(msg.partition))
        emits = self._walk(slot, msg, topic, record)
        if isinstance(emits, Outbound):
            return [*out, emits]
        self._fold(slot, msg, event_time)
        self.stats["processed"] += 1
        emits += self._advance(msg.partition)
        self._count(emits)
        out += [self.encode(e) for e in emits]
        if topic in LINE_INPUTS:  # the input itself first: the line sees causes before effects
            out.append(self._forward(topic, record, f"{msg.topic}:{msg.partition}", msg.offset))
        out.extend(self._forward(e.topic, e.record) for e in emits if e.topic in LINE_INPUTS)
        return out

    def _outputs(self, emits: list[Emit]) -> list[Outbound]:
        out = [self.encode(e) for e in emits]
        out.extend(self._forward(e.topic, e.record) for e in emits if e.topic in LINE_INPUTS)
        return out

    def _forward(self, topic: str, record: Record, src: str | None = None, offset: int = -1) -> Outbound:
        body: dict[str, Any] = {"t": topic, "r": record}
        if src is not None:
            body["src"] = src
            body["o"] = offset
        return Outbound(self.line_topic, str(record["line_id"]).encode(), json.dumps(body).encode())


class LineStage(Stage):
    """Per line: ``LINE_STEPS`` (line KPIs from machine windows, schedule requests from state,
    production and alarms), fed with what the machine stage forwards."""

    name = "lines"
    steps = LINE_STEPS
    snapshot_format = "line-stage"
    legacy_parts: Mapping[str, str] = {"kpis": "line-kpi", "trigger": "schedule-trigger"}

    def decode(self, msg: Inbound) -> Record | Outbound:
        try:
            body = json.loads(msg.value or b"")
            if not isinstance(body, dict) or not isinstance(body.get("r"), dict):
                msg_ = "line event is not an object with a record"
                raise ValueError(msg_)
            return body
        except ValueError as exc:
            self.stats["dead_letters"] += 1
            return self.dead_letter(msg, DecodeError("body", f"undecodable line event: {exc}"))

    def handle(self, msg: Inbound) -> list[Outbound]:
        decoded = self.decode(msg)
        if isinstance(decoded, Outbound):
            return [decoded]
        topic, record = str(decoded["t"]), decoded["r"]
        line_id = msg.key.decode("utf-8", "replace") if msg.key else str(record.get("line_id", ""))
        self._pending.clear()
        slot, early = self._enter(line_id, msg.partition)
        out = self._outputs(early)
        event_time = record.get("event_time") if topic != KPIS else record.get("window_end")
        if self._seen(slot, msg) or self._duplicate(slot, topic, record, decoded):
            return out + self._outputs(self._replayed(msg.partition, event_time, self._silence_ms()))
        emits = self._walk(slot, msg, topic, record)
        if isinstance(emits, Outbound):
            return [*out, emits]
        self._fold(slot, msg, event_time)
        self.stats["processed"] += 1
        emits += self._advance(msg.partition, self._silence_ms())
        self._count(emits)
        return out + [self.encode(e) for e in emits]

    def _duplicate(self, slot: _Slot, topic: str, record: Record, body: dict[str, Any]) -> bool:
        """A forward repeated by a machine-stage replay: raw inputs by source offset, windows by start."""
        if "src" in body:
            src, offset = str(body["src"]), int(body["o"])
            seen = slot.dedup.setdefault("src", {})
            if offset <= seen.get(src, -1):
                self.stats["duplicates_skipped"] += 1
                return True
            seen[src] = offset
        elif topic == KPIS:
            # A machine's windows of one size close in order, so a start not after the last is a repeat.
            mark = f"{record['scope_id']}:{record['window_size_s']}"
            seen = slot.dedup.setdefault("windows", {})
            if int(record["window_start"]) <= seen.get(mark, -1):
                self.stats["duplicates_skipped"] += 1
                return True
            seen[mark] = int(record["window_start"])
        return False

    def _silence_ms(self) -> int:
        """How long a machine may stay silent before line windows stop waiting for it.

        Line windows normally close as their machines' windows arrive (all reported, or every machine
        already past them), which depends only on what the machines sent. Only a machine silent for
        longer than this much of the line's event time is given up on; a tighter bound would close
        windows early during a catch-up, when machines on other partitions lag by minutes.
        """
        kpi = self.config.kpi
        return int((max(kpi.window_sizes_s) + 2 * kpi.allowed_lateness_s) * 1000)
