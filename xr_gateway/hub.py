"""The hub: the gateway's in-memory view of the twin, and the fan-out to clients.

It runs on the event loop only (the Kafka thread hands batches over with ``call_soon_threadsafe``),
so it needs no locks. Each event becomes one ``Frame`` (serialised once) that is offered to every
client whose subscription matches; a client that cannot keep up is kicked, never waited for.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from xr_gateway import metrics
from xr_gateway.auth import Principal
from xr_gateway.direct import DirectWriter
from xr_gateway.filters import Subscription
from xr_gateway.frames import Frame, control_frame, dumps, event_frame
from xr_gateway.queue import ClientQueue
from xr_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
CLOSED_ALARM = "CLEARED_ACK"  # the end of an alarm's lifecycle: nothing left to show or command
ACTIVE_STATUSES = ("ACTIVE_UNACK", "ACTIVE_ACK")


@dataclass(eq=False)
class Client:
    """One websocket connection as the hub sees it."""

    principal: Principal
    queue: ClientQueue
    subscription: Subscription | None = None
    kick: Callable[[int, str], None] = lambda code, reason: None
    closing: bool = False
    busy_since: float | None = None  # set while the sender is inside a batch (maybe blocked on TCP)
    direct: DirectWriter | None = None  # the fast path: write now when nothing waits (xr_gateway.direct)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def stalled_since(self) -> float | None:
        times = [t for t in (self.queue.pending_since, self.busy_since) if t is not None]
        return min(times) if times else None


class Hub:
    def __init__(self, gw: GatewaySettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.gw = gw
        self.clock = clock
        self.epoch = uuid.uuid4().hex  # a resume token from another process (or run) is refused
        self.seq = 0
        self.clients: set[Client] = set()
        self.states: dict[str, Frame] = {}  # machine_id -> latest twin.state frame
        self.records: dict[str, dict[str, Any]] = {}  # machine_id -> latest twin.state record
        self.open_alarms: dict[str, Frame] = {}  # alarm_id -> latest alarm frame, while active
        self.alarm_versions: dict[str, int] = {}  # alarm_id -> lifecycle version of open_alarms' frame
        self.alarm_index: dict[str, tuple[str, str]] = {}  # alarm_id -> (machine_id, correlation_id)
        self.kpis: dict[tuple[Any, ...], Frame] = {}  # latest window per (scope, id, size)
        self.plans: dict[str | None, Frame] = {}  # latest plan per line
        self.plan_records: dict[str, dict[str, Any]] = {}  # line_id -> latest plan record
        self.plans_by_correlation: OrderedDict[str, dict[str, Any]] = OrderedDict()  # newest last, bounded
        self.recent_alarms: deque[dict[str, Any]] = deque(maxlen=gw.history_max)
        self.recent_kpis: deque[dict[str, Any]] = deque(maxlen=gw.history_max)
        self.ring: deque[Frame] = deque(maxlen=gw.resume_buffer_frames)
        self.ready = asyncio.Event()  # set once twin.state was read to its end at start-up

    # -- events in -----------------------------------------------------------------------------
    def publish(self, events: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Apply decoded events (stream, record) to the view and offer each to matching clients."""
        now = self.clock()
        wall_ms = time.time() * 1000
        clients = [c for c in self.clients if c.subscription is not None]
        written = 0
        for stream, record in events:
            self.seq += 1
            frame = event_frame(self.seq, stream, record)
            self._remember(frame, record)
            self.ring.append(frame)
            metrics.EVENTS_IN.labels(stream).inc()
            if frame.event_time_ms:
                metrics.INGEST_LATENCY.observe(max(0.0, wall_ms - frame.event_time_ms) / 1000)
            data: bytes | None = None
            for client in clients:
                sub = client.subscription
                if client.closing or sub is None or not sub.matches(stream, frame.line_id, frame.machine_id):
                    continue
                # Nothing waiting for this client and its socket writable: write now (in order, as
                # nothing is ahead of this frame). Otherwise the queue, which conflates and bounds.
                direct = client.direct
                if direct is not None and client.busy_since is None and not client.queue:
                    if data is None:
                        data = frame.text.encode()
                    if direct.write(data):
                        written += 1
                        continue
                if not client.queue.put(frame, now):
                    self.kick(client, CLOSE_TOO_SLOW, f"too slow: {len(client.queue)} frames pending")
        if written:
            metrics.FRAMES_OUT.inc(written)
            metrics.FRAMES_DIRECT.inc(written)

    def _remember(self, frame: Frame, record: dict[str, Any]) -> None:
        stream = frame.stream
        if stream == "state" and frame.machine_id is not None:
            self.states[frame.machine_id] = frame
            self.records[frame.machine_id] = record
            for alarm in record.get("active_alarms") or ():
                self.alarm_index[str(alarm["alarm_id"])] = (frame.machine_id, str(record["correlation_id"]))
        elif stream == "alarms":
            alarm_id = str(record["alarm_id"])
            version = int(record.get("version") or 0)
            if version and version < self.alarm_versions.get(alarm_id, 0):
                return  # an older lifecycle step of an alarm the gateway already knows further on
            self.recent_alarms.append(record)
            status = record.get("status")
            if status == CLOSED_ALARM:
                self.alarm_index.pop(alarm_id, None)
                self.alarm_versions.pop(alarm_id, None)
            else:  # a cleared alarm not yet acknowledged still takes an ACK
                self.alarm_versions[alarm_id] = version
                self.alarm_index[alarm_id] = (str(record["machine_id"]), str(record["correlation_id"]))
            if status in ACTIVE_STATUSES:
                self.open_alarms[alarm_id] = frame
            else:  # the snapshot's alarms are the machines' active alarms
                self.open_alarms.pop(alarm_id, None)
        elif stream == "kpis" and frame.conflate_key is not None:
            self.kpis[frame.conflate_key] = frame
            self.recent_kpis.append(record)
        elif stream == "plans":
            self.plans[frame.line_id] = frame
            line = str(record.get("line_id"))
            known = self.plan_records.get(line)
            if known is None or int(record.get("event_time") or 0) >= int(known.get("event_time") or 0):
                self.plan_records[line] = record
            by_cause = self.plans_by_correlation
            by_cause[str(record.get("correlation_id"))] = record
            by_cause.move_to_end(str(record.get("correlation_id")))
            while len(by_cause) > self.gw.history_max:
                by_cause.popitem(last=False)

    def mark_ready(self) -> None:
        self.ready.set()

    # -- clients -------------------------------------------------------------------------------
    def add(self, client: Client) -> None:
        self.clients.add(client)
        metrics.CLIENTS.set(len(self.clients))

    def remove(self, client: Client) -> None:
        self.clients.discard(client)
        client.queue.clear()
        metrics.CLIENTS.set(len(self.clients))

    def send(self, client: Client, message: dict[str, Any]) -> None:
        """A reply to one client, in order with its deltas."""
        if not client.closing and not client.queue.put(control_frame(message), self.clock()):
            self.kick(client, CLOSE_TOO_SLOW, f"too slow: {len(client.queue)} frames pending")

    def kick(self, client: Client, code: int, reason: str) -> None:
        """Stop feeding ``client`` events now and have its session close it. A slow client's backlog
        is dropped at once; any other client still gets the replies already queued (e.g. why)."""
        if client.closing:
            return
        client.closing = True
        self.clients.discard(client)
        metrics.CLIENTS.set(len(self.clients))
        if code == CLOSE_TOO_SLOW:
            client.queue.clear()  # release its backlog now; other closes first flush their replies
        metrics.DISCONNECTS.labels(_reason_label(code)).inc()
        if code == CLOSE_TOO_SLOW:
            metrics.SLOW_DISCONNECTS.inc()
        log.info("closing client %s (%s): %d %s", client.id, client.principal.user, code, reason)
        client.kick(code, reason)

    def sweep(self) -> None:
        """Kick clients whose oldest pending frame has waited past the bound (stuck on TCP)."""
        limit = self.gw.slow_client_timeout_s
        now = self.clock()
        for client in list(self.clients):
            since = client.stalled_since()
            if since is not None and now - since > limit:
                self.kick(client, CLOSE_TOO_SLOW, f"too slow: nothing delivered for {now - since:.1f} s")

    def subscribe(self, client: Client, sub: Subscription, resume: tuple[str, int] | None = None) -> bool:
        """Set the client's filters and queue what it needs next: the frames it missed since
        ``resume`` = (epoch, seq) if the ring still has them, else a fresh snapshot. Returns
        whether it resumed. Runs without awaiting, so no event falls between snapshot and deltas."""
        client.queue.clear()
        client.subscription = sub
        now = self.clock()
        missed = self._missed(sub, resume)
        resumed = missed is not None
        self.send(
            client,
            {
                "type": "subscribed",
                "epoch": self.epoch,
                "seq": self.seq,
                "resumed": resumed,
                **sub.describe(),
            },
        )
        if missed is not None:
            for frame in missed:
                client.queue.put(frame, now)
        else:
            client.queue.put(self._snapshot(sub), now)
        return resumed

    def _missed(self, sub: Subscription, resume: tuple[str, int] | None) -> list[Frame] | None:
        if resume is None or resume[0] != self.epoch or resume[1] > self.seq:
            return None
        after = resume[1]
        oldest = self.ring[0].seq if self.ring else self.seq + 1
        if after + 1 < oldest:
            return None  # the ring has moved past it: a snapshot is cheaper and complete
        missed = [f for f in self.ring if f.seq > after and sub.matches(f.stream, f.line_id, f.machine_id)]
        # Conflation would shrink state frames, but alarms count one by one: too many is a snapshot.
        if sum(1 for f in missed if f.conflate_key is None) >= self.gw.queue_max_frames // 2:
            return None
        return missed

    def _snapshot(self, sub: Subscription) -> Frame:
        """Everything the client asked for, as of ``self.seq``, from the frames' own JSON texts."""

        def pick(frames: Iterable[Frame], stream: str) -> str:
            if stream not in sub.streams:
                return "[]"
            chosen = [f.data_text for f in frames if sub.matches(stream, f.line_id, f.machine_id)]
            return "[" + ",".join(chosen) + "]"

        text = (
            f'{{"type":"snapshot","epoch":{dumps(self.epoch)},"seq":{self.seq},'
            f'"machines":{pick(self.states.values(), "state")},'
            f'"alarms":{pick(self.open_alarms.values(), "alarms")},'
            f'"kpis":{pick(self.kpis.values(), "kpis")},'
            f'"plans":{pick(self.plans.values(), "plans")}}}'
        )
        return Frame(self.seq, "control", None, None, None, text)

    # -- lookups for commands and REST ---------------------------------------------------------
    def alarm_target(self, alarm_id: str) -> tuple[str, str] | None:
        """(machine_id, correlation_id) of an alarm the gateway knows is open."""
        return self.alarm_index.get(alarm_id)


def _reason_label(code: int) -> str:
    return {
        CLOSE_TOO_SLOW: "too_slow",
        4001: "token_expired",
        1008: "policy",
        1001: "shutdown",
    }.get(code, "other")
