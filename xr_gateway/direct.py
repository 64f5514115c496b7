"""Synchronous writes to a websocket that can take them now: the fan-out's fast path.

Through ASGI every frame to every client is an ``await send(...)`` in that client's own sender
task: a task wake-up, a future and four coroutine layers per frame, about two thirds of the
gateway's CPU per frame at 1000 clients (profile in docs/benchmarks.md). A client whose queue is
empty and whose socket is writable does not need any of that: its frame can be framed and handed
to the transport at once, as ``websockets.broadcast()`` does.

``DirectWriter.find`` recognises the server's connection object behind the raw ASGI ``send``
(uvicorn's ``websockets-sansio`` protocol, which ``xr_gateway.server`` selects). Anything else
(another server, another protocol implementation, a test client) gets ``None`` and every frame
takes the ordinary path, so this is an optimisation only: ordering, back-pressure and slow-client
handling stay with the per-client queue (see ``Hub.publish``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

RAW_SEND = "twin.raw_send"  # the ASGI scope key under which RawSendMiddleware leaves the server's send


class DirectWriter:
    """Writes one text frame to a uvicorn websockets-sansio connection without awaiting."""

    __slots__ = ("_conn", "_proto", "_transport", "_writable")

    def __init__(self, proto: Any) -> None:
        self._proto = proto
        self._conn = proto.conn
        self._transport = proto.transport
        self._writable = proto.writable

    @classmethod
    def find(cls, scope: Mapping[str, Any]) -> DirectWriter | None:
        """The writer for this websocket's connection, or None where the server is not one we know."""
        proto = getattr(scope.get(RAW_SEND), "__self__", None)
        if proto is None or type(proto).__name__ != "WebSocketsSansIOProtocol":
            return None
        try:
            conn = proto.conn
            ok = (
                callable(getattr(conn, "send_text", None))
                and callable(getattr(conn, "data_to_send", None))
                and callable(getattr(proto.transport, "write", None))
                and callable(getattr(proto.writable, "is_set", None))
                and isinstance(proto.close_sent, bool)
                and isinstance(proto.handshake_complete, bool)
                and isinstance(proto.disconnected, bool)
            )
        except AttributeError:
            ok = False
        if not ok:
            log.warning("unexpected websocket protocol object; frames go through ASGI send only")
            return None
        return cls(proto)

    def write(self, data: bytes) -> bool:
        """Frame ``data`` (UTF-8 JSON text) and hand it to the transport. False, having written
        nothing, when the connection cannot take it now (not open, closing, or the transport's
        buffer is over its high-water mark): the caller queues the frame instead."""
        proto = self._proto
        if (
            proto.close_sent
            or proto.disconnected
            or not proto.handshake_complete
            or not self._writable.is_set()
            or self._transport.is_closing()
        ):
            return False
        try:
            self._conn.send_text(data)
        except Exception:  # the protocol's state moved on (closing): the ordinary path will see it
            return False
        self._transport.write(b"".join(self._conn.data_to_send()))
        return True


class RawSendMiddleware:
    """Leaves the server's own ``send`` in a websocket's scope for ``DirectWriter.find``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope[RAW_SEND] = send
        await self.app(scope, receive, send)
