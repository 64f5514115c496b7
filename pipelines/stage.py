"""The transport-free core of the processing workers: bytes in, bytes out, snapshots with positions.

A *stage* owns the processors for the keys of the partitions it is given (machines for the machine
stage, lines for the line stage). For every input message it decodes, skips what its state already
reflects (a replay after a crash), runs the processors, and returns the encoded output messages, or a
dead letter with the reason. The Faust app (``pipelines.processing``) and the benchmark's plain
confluent-kafka loop both drive these same classes, so they run the same logic.

Exactly-once *state*, at-least-once *output*: a stage's snapshot of a key records, for every input
partition, the offset of the last message folded into it. A worker writes snapshots only after the
outputs of those messages are acknowledged by Kafka, and commits input offsets only after the
snapshots are, so after a crash the replayed messages up to the snapshot are skipped (their outputs
exist) and the rest are processed again from the snapshot, giving the same derived ids.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from processors.base import Emit, Record
from processors.twin import (
    COMMANDS,
    KPIS,
    PRODUCTION,
    STATE,
    TELEMETRY,
    LineTwin,
    MachineTwin,
    TwinConfig,
    forwards_to_line,
    pack,
    unpack,
)
from twin.codec import AvroCodec, DecodeError
from twin.dlq import Headers, dead_letter_headers, dlq_name

log = logging.getLogger(__name__)

LINE_EVENTS_SUFFIX = "line-events"
MERGED = (TELEMETRY, PRODUCTION, STATE)  # merged by event time per partition
ADVANCE_STEP_MS = 1000  # event-time grid on which windows close and duration rules fire


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


class ProcessingError(Exception):
    """A processor raised on a record: the record is dead-lettered with reason ``processing``."""

    reason = "processing"


@dataclass
class Snapshot:
    """A key's processor state plus the input positions it reflects."""

    key: str
    partition: int
    data: bytes


@dataclass
class _Slot:
    """One key's processors and bookkeeping."""

    twin: Any  # MachineTwin | LineTwin
    partition: int
    positions: dict[str, int] = field(default_factory=dict)  # "topic:partition" -> last folded offset
    extra: dict[str, Any] = field(default_factory=dict)  # stage-specific dedup state
    dirty: bool = False


class Codecs:
    """One codec per topic: decode in the plain wire form, encode outputs."""

    def __init__(self, factory: Callable[[str], AvroCodec]) -> None:
        self._factory = factory
        self._codecs: dict[str, AvroCodec] = {}

    def __call__(self, topic: str) -> AvroCodec:
        codec = self._codecs.get(topic)
        if codec is None:
            codec = self._codecs[topic] = self._factory(topic)
        return codec


class Stage:
    """Shared machinery: slots by key, positions, dead letters, counters."""

    name = "stage"

    def __init__(self, config: TwinConfig, codecs: Codecs, prefix: str = "") -> None:
        self.config = config
        self.codecs = codecs
        self.prefix = prefix  # topic namespace: real name = prefix + catalog name
        self.slots: dict[str, _Slot] = {}
        self.stats: Counter[str] = Counter()
        self.watermarks: dict[int, int] = {}  # input partition -> max event time seen
        self._advanced: dict[int, int] = {}
        self.released: list[Inbound] = []  # handled since the caller last took them (to ack)
        self.last_offset: dict[tuple[str, int], int] = {}  # newest offset received per topic partition
        self.lookup: Callable[[str], bytes | None] = lambda _key: None  # stored snapshot of a key

    # -- the stage's own work (subclasses) -----------------------------------------------------
    def _new_twin(self, key: str) -> Any:
        raise NotImplementedError

    def handle(self, msg: Inbound) -> list[Outbound]:
        """Process one message now; its outputs (or its dead letter)."""
        raise NotImplementedError

    # -- slots -------------------------------------------------------------------------------

    def slot(self, key: str, partition: int) -> _Slot:
        found = self.slots.get(key)
        if found is not None:
            found.partition = partition
            return found
        twin = self._new_twin(key)
        slot = _Slot(twin, partition)
        stored = self.lookup(key)
        if stored:
            self._restore(slot, stored)
            self.stats["restored"] += 1
        self.slots[key] = slot
        return slot

    def _restore(self, slot: _Slot, data: bytes) -> None:
        parts = unpack(data)
        meta = json.loads(parts["meta"])
        slot.positions = {k: int(v) for k, v in meta["positions"].items()}
        slot.extra = meta.get("extra", {})
        slot.twin.restore(parts["twin"])

    def snapshots(self) -> list[Snapshot]:
        """Snapshots of every key changed since the last call (and marks them clean)."""
        out: list[Snapshot] = []
        for key, slot in self.slots.items():
            if slot.dirty:
                meta = json.dumps({"positions": slot.positions, "extra": slot.extra}).encode()
                out.append(Snapshot(key, slot.partition, pack({"meta": meta, "twin": slot.twin.snapshot()})))
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
        if isinstance(error, ProcessingError):
            headers = [(k, b"processing" if k == "twin.dlq.error.reason" else v) for k, v in headers]
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
                emits = slot.twin.advance(mark)
                if emits:
                    slot.dirty = True
                    emitted.extend(emits)
        self.stats["emitted"] += len(emitted)
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
        if event_time is not None and event_time > self.watermarks.get(msg.partition, -(2**62)):
            self.watermarks[msg.partition] = event_time


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
    """Per machine: anomalies, alarms, machine KPIs, twin state; forwards line inputs to the line stage."""

    name = "machines"

    def __init__(
        self, config: TwinConfig, codecs: Codecs, line_topic: str, prefix: str = "", max_hold_s: float = 5.0
    ) -> None:
        super().__init__(config, codecs, prefix)
        self.line_topic = line_topic
        self.max_hold_s = max_hold_s
        self.queues: dict[tuple[int, str], deque[tuple[int, Inbound, Record]]] = {}
        self.queued = 0
        self.clock = IdleClock()
        self.last_seen: dict[tuple[int, str], float] = {}  # idle clock at the newest offer per queue
        self.first_seen: dict[int, float] = {}  # idle clock at the first offer per partition

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for key in [k for k in self.queues if k[0] in gone]:
            self.queued -= len(self.queues.pop(key))
        super().drop_partitions(gone)

    def _new_twin(self, key: str) -> MachineTwin:
        return MachineTwin(key, self.config)

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
        return self.handle_decoded(msg, decoded)

    def handle_decoded(self, msg: Inbound, record: Record) -> list[Outbound]:
        machine_id = msg.key.decode("utf-8", "replace") if msg.key else str(record.get("machine_id", ""))
        if not machine_id:
            self.stats["dead_letters"] += 1
            return [self.dead_letter(msg, DecodeError("body", "record has no machine_id and no key"))]
        slot = self.slot(machine_id, msg.partition)
        if self._seen(slot, msg):
            return []
        topic = msg.topic[len(self.prefix) :]
        try:
            emits = slot.twin.process_one(topic, record)
        except Exception as exc:  # a processor bug must not stop the line: dead-letter, say why, go on
            log.exception("processor failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
            self.stats["processing_errors"] += 1
            self.stats["dead_letters"] += 1
            return [self.dead_letter(msg, ProcessingError(f"{type(exc).__name__}: {exc}"))]
        # An operator's command carries the operator's clock, not the machine's: it must not move the
        # partition's event-time watermark (that would close windows and fire duration rules early).
        self._fold(slot, msg, None if topic == COMMANDS else record.get("event_time"))
        self.stats["processed"] += 1
        emits += self._advance(msg.partition)
        out = [self.encode(e) for e in emits]
        if forwards_to_line(topic, record):
            out.append(self._forward(topic, record, f"{msg.topic}:{msg.partition}", msg.offset))
        out.extend(self._forward(e.topic, e.record) for e in emits if forwards_to_line(e.topic, e.record))
        self.stats["emitted"] += len(emits)
        return out

    def _forward(self, topic: str, record: Record, src: str | None = None, offset: int = -1) -> Outbound:
        body: dict[str, Any] = {"t": topic, "r": record}
        if src is not None:
            body["src"] = src
            body["o"] = offset
        return Outbound(self.line_topic, str(record["line_id"]).encode(), json.dumps(body).encode())


class LineStage(Stage):
    """Per line: line KPIs from machine windows, schedule requests from state, production and alarms."""

    name = "lines"

    def _new_twin(self, key: str) -> LineTwin:
        return LineTwin(key, self.config)

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
        slot = self.slot(line_id, msg.partition)
        if self._seen(slot, msg) or self._duplicate(slot, topic, record, decoded):
            return []
        try:
            emits = slot.twin.process_one(topic, record)
        except Exception as exc:
            log.exception("line processor failed on %s[%d]@%d", msg.topic, msg.partition, msg.offset)
            self.stats["processing_errors"] += 1
            self.stats["dead_letters"] += 1
            return [self.dead_letter(msg, ProcessingError(f"{type(exc).__name__}: {exc}"))]
        self._fold(slot, msg, record.get("event_time") if topic != KPIS else record.get("window_end"))
        self.stats["processed"] += 1
        self.stats["emitted"] += len(emits)
        emits += self._advance(msg.partition, self._silence_ms())
        return [self.encode(e) for e in emits]

    def _duplicate(self, slot: _Slot, topic: str, record: Record, body: dict[str, Any]) -> bool:
        """A forward repeated by a machine-stage replay: raw inputs by source offset, windows by start."""
        if "src" in body:
            src, offset = str(body["src"]), int(body["o"])
            seen = slot.extra.setdefault("src", {})
            if offset <= seen.get(src, -1):
                self.stats["duplicates_skipped"] += 1
                return True
            seen[src] = offset
        elif topic == KPIS:
            # A machine's windows of one size close in order, so a start not after the last is a repeat.
            mark = f"{record['scope_id']}:{record['window_size_s']}"
            seen = slot.extra.setdefault("windows", {})
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
