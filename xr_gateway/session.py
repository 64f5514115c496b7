"""One websocket client: the handshake checks, then a sender task and a receiver loop.

The sender drains the client's queue and writes; when the client's TCP window is full that write
waits, frames pile up (conflated) in the queue, and the hub kicks the client once the bound is
reached. Nothing a client does can block the hub or another client.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
from typing import Any

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from twin.errors import AuthError, FilterError, TwinError
from xr_gateway import metrics
from xr_gateway.auth import Principal
from xr_gateway.commands import COMMANDS
from xr_gateway.direct import DirectWriter
from xr_gateway.filters import STREAMS, Subscription
from xr_gateway.hub import CLOSE_TOO_SLOW, Client
from xr_gateway.queue import ClientQueue
from xr_gateway.ratelimit import TokenBucket
from xr_gateway.service import Gateway

# Set in the connection's task when the gateway refuses its handshake on purpose.
REFUSED: contextvars.ContextVar[bool] = contextvars.ContextVar("twin_ws_refused", default=False)

log = logging.getLogger(__name__)

PROTOCOL = "twin.v1"
TOKEN_PROTOCOL_PREFIX = "bearer."  # noqa: S105 - not a secret; browsers cannot set headers on a websocket: the token rides here
CLOSE_GRACE_S = 10.0  # how long a close frame may wait behind a full TCP window before we give up
CLOSE_POLICY = 1008
FLUSH_BEFORE_CLOSE_S = 1.0
CLOSE_TOKEN_EXPIRED = 4001


async def websocket_endpoint(websocket: WebSocket) -> None:
    gateway: Gateway = websocket.app.state.gateway
    if not gateway.origin_allowed(websocket.headers.get("origin")):
        await _refuse(websocket, 403, "origin not allowed", "origin")
        return
    token, protocols = _credentials(websocket)
    try:
        principal = gateway.verifier.verify(token)
    except AuthError as exc:
        await _refuse(websocket, 401, str(exc), "token")
        return
    if len(gateway.hub.clients) >= gateway.gw.max_clients:
        await _refuse(websocket, 503, "gateway full, try another replica or later", "full")
        return
    await websocket.accept(subprotocol=PROTOCOL if PROTOCOL in protocols else None)
    session = Session(websocket, gateway, principal)
    session.client.direct = DirectWriter.find(websocket.scope)
    await session.run()


def _credentials(websocket: WebSocket) -> tuple[str | None, list[str]]:
    protocols = [str(p) for p in websocket.scope.get("subprotocols", [])]
    auth = websocket.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), protocols
    for p in protocols:
        if p.startswith(TOKEN_PROTOCOL_PREFIX):
            return p[len(TOKEN_PROTOCOL_PREFIX) :], protocols
    return None, protocols


async def _refuse(websocket: WebSocket, status: int, reason: str, label: str) -> None:
    """An HTTP answer to the upgrade request, so a client sees why (a browser sees only a failure)."""
    metrics.HANDSHAKES_REFUSED.labels(label).inc()
    REFUSED.set(True)  # the server's complaint that no handshake completed is expected: see server.py
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(PlainTextResponse(reason, status_code=status))
    else:
        await websocket.close(CLOSE_POLICY, reason)


class Session:
    def __init__(self, websocket: WebSocket, gateway: Gateway, principal: Principal) -> None:
        self.ws = websocket
        self.gateway = gateway
        self.hub = gateway.hub
        gw = gateway.gw
        self.client = Client(principal, ClientQueue(gw.queue_max_frames))
        self.client.kick = self._on_kick
        self.bucket = TokenBucket(gw.client_msg_rate, gw.client_msg_burst, time.monotonic())
        self.strikes = 0
        self.closed = asyncio.Event()
        self._close_task: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        client, hub = self.client, self.hub
        hub.add(client)
        loop = asyncio.get_running_loop()
        # A token is checked once at the handshake; a connection must not outlive it.
        expiry = loop.call_later(
            max(0.0, client.principal.expires_at - time.time()),
            hub.kick,
            client,
            CLOSE_TOKEN_EXPIRED,
            "token expired",
        )
        self._sender = asyncio.create_task(self._send_loop())
        receiver = asyncio.create_task(self._receive_loop())
        closed = asyncio.create_task(self.closed.wait())
        hub.send(client, self._hello())
        try:
            await asyncio.wait({self._sender, receiver, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            expiry.cancel()
            hub.remove(client)
            for task in (self._sender, receiver, closed, *self._tasks):
                task.cancel()
            if self._close_task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._close_task

    def _hello(self) -> dict[str, Any]:
        gw = self.gateway.gw
        return {
            "type": "hello",
            "protocol": PROTOCOL,
            "epoch": self.hub.epoch,
            "seq": self.hub.seq,
            "user": self.client.principal.user,
            "role": self.client.principal.role.value,
            "streams": list(STREAMS),
            "max_frame_bytes": gw.max_frame_bytes,
            "token_expires_at": int(self.client.principal.expires_at),
        }

    def _on_kick(self, code: int, reason: str) -> None:
        if code == CLOSE_TOO_SLOW and self._sender is not None:
            self._sender.cancel()  # it may be parked on a full TCP window; the close goes next
        if self._close_task is None:
            self._close_task = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            # Replies already queued (the error that explains the close) go out first.
            deadline = time.monotonic() + FLUSH_BEFORE_CLOSE_S
            while (len(self.client.queue) or self.client.busy_since) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if self._sender is not None:
                self._sender.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code, reason[:120]), CLOSE_GRACE_S)
        finally:
            self.closed.set()

    # -- out -----------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        client, queue = self.client, self.client.queue
        send, clock = self.ws.send, self.hub.clock
        try:
            while True:
                await queue.wait()
                frames = queue.drain()
                if queue.conflated:
                    metrics.FRAMES_CONFLATED.inc(queue.conflated)
                    queue.conflated = 0
                client.busy_since = clock()
                for frame in frames:
                    await send({"type": "websocket.send", "text": frame.text})
                client.busy_since = None
                metrics.FRAMES_OUT.inc(len(frames))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    # -- in ------------------------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        try:
            initial = Subscription.from_query(self.ws.query_params)
        except FilterError as exc:
            self._error("bad_filter", str(exc))
            initial = None
        if initial is not None:
            await self._subscribe(initial, None)
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if self.client.closing:
                continue
            if not self.bucket.allow(time.monotonic()):
                metrics.RATE_LIMITED.inc()
                self.strikes += 1
                if self.strikes > self.gateway.gw.client_msg_burst:
                    self.hub.kick(self.client, CLOSE_POLICY, "rate limit exceeded")
                else:
                    self._error("rate_limited", "too many messages; this one was ignored")
                continue
            self.strikes = 0
            text = message.get("text")
            if text is None:
                raw = message.get("bytes") or b""
                try:
                    text = raw.decode()
                except UnicodeDecodeError:
                    self._error("bad_message", "binary messages must be UTF-8 JSON")
                    continue
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            self._error("bad_message", "not JSON")
            return
        if not isinstance(message, dict):
            self._error("bad_message", "a message is a JSON object with a 'type'")
            return
        kind, request_id = message.get("type"), message.get("id")
        if kind == "subscribe":
            try:
                sub = Subscription.parse(message)
            except FilterError as exc:
                self._error("bad_filter", str(exc), request_id)
                return
            await self._subscribe(sub, _resume(message.get("resume")))
        elif kind == "ping":
            self.hub.send(self.client, {"type": "pong", "id": request_id, "seq": self.hub.seq})
        elif isinstance(kind, str) and kind.upper() in COMMANDS:
            task = asyncio.create_task(self._command(kind.upper(), message, request_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._error("unknown_type", f"unknown message type {kind!r}", request_id)

    async def _subscribe(self, sub: Subscription, resume: tuple[str, int] | None) -> None:
        # A snapshot before twin.state is read to its end would show machines missing.
        await self.hub.ready.wait()
        if not self.client.closing:
            self.hub.subscribe(self.client, sub, resume)

    async def _command(self, command: str, message: dict[str, Any], request_id: Any) -> None:
        principal = self.client.principal
        if not principal.can_command:
            metrics.COMMANDS.labels(command, "forbidden").inc()
            self._error(
                "forbidden", f"role {principal.role.value} may not {command.lower()} alarms", request_id
            )
            return
        alarm_id, comment = message.get("alarm_id"), message.get("comment")
        if not isinstance(alarm_id, str) or not alarm_id or len(alarm_id) > 64:
            self._error("bad_message", "'alarm_id' must be an alarm id string", request_id)
            return
        if comment is not None and (not isinstance(comment, str) or len(comment) > 500):
            self._error("bad_message", "'comment' must be a string of at most 500 characters", request_id)
            return
        target = self.hub.alarm_target(alarm_id)
        if target is None:
            metrics.COMMANDS.labels(command, "unknown_alarm").inc()
            self._error("unknown_alarm", f"no open alarm {alarm_id}", request_id)
            return
        machine_id, correlation_id = target
        publisher = self.gateway.commands
        if publisher is None:
            self._error("unavailable", "commands are not enabled on this gateway", request_id)
            return
        try:
            command_id = await publisher.submit(
                alarm_id=alarm_id,
                machine_id=machine_id,
                command=command,
                user=principal.user,
                correlation_id=correlation_id,
                comment=comment,
            )
        except (TwinError, TimeoutError) as exc:
            metrics.COMMANDS.labels(command, "failed").inc()
            self._error("command_failed", str(exc) or type(exc).__name__, request_id)
            return
        metrics.COMMANDS.labels(command, "accepted").inc()
        self.hub.send(
            self.client,
            {
                "type": "command_accepted",
                "id": request_id,
                "command": command,
                "alarm_id": alarm_id,
                "machine_id": machine_id,
                "command_id": command_id,
            },
        )

    def _error(self, code: str, message: str, request_id: Any = None) -> None:
        self.hub.send(self.client, {"type": "error", "code": code, "message": message, "id": request_id})


def _resume(value: Any) -> tuple[str, int] | None:
    if isinstance(value, dict) and isinstance(value.get("epoch"), str) and isinstance(value.get("seq"), int):
        return value["epoch"], value["seq"]
    return None
