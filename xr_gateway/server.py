"""Run the app under uvicorn with the websocket limits from the settings."""

from __future__ import annotations

import logging
import socket

import uvicorn
from fastapi import FastAPI

from xr_gateway.session import REFUSED
from xr_gateway.settings import GatewaySettings


class RefusalIsNotAnError(logging.Filter):
    """uvicorn's sans-I/O websocket protocol logs "ASGI callable returned without completing
    handshake." at ERROR after an HTTP denial response too, i.e. after every handshake the gateway
    refuses on purpose (a bad token, a foreign Origin: counted in
    ``twin_gateway_handshakes_refused_total``). That one is logged at DEBUG; any other stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno >= logging.ERROR
            and REFUSED.get()
            and "without completing handshake" in str(record.msg)
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def uvicorn_config(app: FastAPI, gw: GatewaySettings, *, log_level: str = "warning") -> uvicorn.Config:
    config = _config(app, gw, log_level)
    error_log = logging.getLogger("uvicorn.error")  # configured by uvicorn.Config just above
    if not any(isinstance(f, RefusalIsNotAnError) for f in error_log.filters):
        error_log.addFilter(RefusalIsNotAnError())
    return config


def _config(app: FastAPI, gw: GatewaySettings, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=gw.host,
        port=gw.port,
        # The sans-I/O websockets protocol: keepalive pings, max_size, HTTP denial responses, and
        # send() waits for a writable transport, which is what lets a slow client fill its queue.
        ws="websockets-sansio",
        ws_max_size=gw.max_frame_bytes,  # a bigger client message closes the connection with 1009
        ws_ping_interval=gw.ping_interval_s,
        ws_ping_timeout=gw.ping_timeout_s,
        # Compression is per connection: it would undo serialising each frame once for all clients.
        ws_per_message_deflate=False,
        lifespan="on",
        log_level=log_level,
        access_log=False,  # one line per client connect drowns the log at 1000 clients
        timeout_graceful_shutdown=5,
    )


def serve(
    app: FastAPI, gw: GatewaySettings, *, sock: socket.socket | None = None, log_level: str = "warning"
) -> None:
    """Block until SIGINT/SIGTERM. ``sock``: an already bound socket (tests pass one with a port)."""
    server = uvicorn.Server(uvicorn_config(app, gw, log_level=log_level))
    server.run(sockets=[sock] if sock is not None else None)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so a taken port is one clear error (uvicorn would exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
