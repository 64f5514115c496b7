"""Run the gateway in-process on a free port against the real broker, feed it Avro events, and talk
to it with real websocket clients."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pipelines.topics import delete_topics, ensure_topics
from schemas import load_schema
from twin.clients import kafka_producer, schema_registry
from twin.codec import AvroCodec
from twin.settings import Settings
from twin.topics import prefixed
from twin.topics import topic as catalog_topic
from xr_gateway.auth import Role, TokenVerifier
from xr_gateway.settings import GatewaySettings

SECRET = "integration-test-secret-" + "x" * 24
ORIGIN = "https://xr.example.test"


@dataclass
class RunningGateway:
    settings: Settings
    gw: GatewaySettings
    verifier: TokenVerifier
    port: int
    process: subprocess.Popen[bytes]

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, role: Role = Role.VIEWER, user: str = "tester") -> str:
        return self.verifier.mint(user, role, 600)

    def topic(self, catalog_name: str) -> str:
        return self.gw.topic_prefix + catalog_name

    def wait_state(self, machine_id: str, parts_good: int, limit_s: float = 60) -> dict[str, Any]:
        """Until REST shows ``machine_id`` with ``parts_good``: the gateway has applied that event."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.http_url}/api/machines/{machine_id}", headers=headers, timeout=10)
            if r.status_code == 200 and r.json()["parts_good"] == parts_good:
                return dict(r.json())
            time.sleep(0.1)
        raise AssertionError(f"gateway did not show {machine_id} with parts_good={parts_good}")

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.http_url}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0


class Publisher:
    """Avro events onto the namespace's topics with the real codec and producer."""

    def __init__(self, settings: Settings, prefix: str) -> None:
        self.prefix = prefix
        self.producer = kafka_producer(settings)
        self.registry = schema_registry(settings)
        self.codecs: dict[str, AvroCodec] = {}

    def send(self, catalog_name: str, record: dict[str, Any]) -> None:
        codec = self.codecs.get(catalog_name)
        if codec is None:
            schema = load_schema(catalog_topic(catalog_name).value_schema)
            codec = AvroCodec(self.registry, f"{self.prefix}{catalog_name}-value", schema.text)
            self.codecs[catalog_name] = codec
        key = record.get("machine_id") or record.get("line_id")
        self.producer.produce(self.prefix + catalog_name, key=str(key).encode(), value=codec.encode(record))
        self.producer.poll(0)

    def send_all(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        for catalog_name, record in events:
            self.send(catalog_name, record)
        self.flush()

    async def publish(self, events: list[tuple[str, dict[str, Any]]], *, per_tick: int = 0) -> None:
        """Produce from a thread: the test's websocket clients keep reading meanwhile (a blocked
        loop would make them look slow to the gateway). ``per_tick``: at most that many events per
        50 ms, like a live line, rather than one burst faster than any client could parse it."""
        if not per_tick:
            await asyncio.to_thread(self.send_all, events)
            return
        for i in range(0, len(events), per_tick):
            await asyncio.to_thread(self.send_all, events[i : i + per_tick])
            await asyncio.sleep(0.05)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0

    def close(self) -> None:
        self.flush()
        self.registry.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def state(
    machine: str, line: str, parts_good: int = 0, *, signals: int = 2, alarms: tuple[str, ...] = ()
) -> dict[str, Any]:
    t = now_ms()
    return {
        "event_id": str(uuid.uuid4()), "event_time": t, "source": "test", "correlation_id": str(uuid.uuid4()),
        "line_id": line, "machine_id": machine, "machine_type": "cnc", "state": "RUNNING", "state_since": t,
        "signals": [{"name": f"signal_{i}", "value": float(i), "unit": "mm/s"} for i in range(signals)],
        "active_alarms": [{"alarm_id": a, "alarm_type": "HighVibration", "severity": "MAJOR",
                           "status": "ACTIVE_UNACK"} for a in alarms],
        "oee": 0.5, "parts_good": parts_good, "parts_scrap": 0,
    }  # fmt: skip


def alarm(machine: str, line: str, alarm_id: str | None = None, *, status: str = "ACTIVE_UNACK",
          message: str = "") -> dict[str, Any]:  # fmt: skip
    t = now_ms()
    return {
        "event_id": str(uuid.uuid4()), "event_time": t, "source": "test", "correlation_id": "corr-1",
        "alarm_id": alarm_id or str(uuid.uuid4()), "line_id": line, "machine_id": machine,
        "alarm_type": "HighVibration", "rule_id": "r1", "severity": "MAJOR", "status": status,
        "start_time": t, "end_time": None, "ack_time": None, "acked_by": None, "clear_time": None,
        "cleared_by": None, "value": 9.5, "message": message, "details": {},
    }  # fmt: skip


@contextmanager
def running_gateway(
    settings: Settings, logs: Path, *, prefix: str | None = None, **overrides: Any
) -> Iterator[RunningGateway]:
    """A gateway process on a free port with its own topic namespace; topics deleted afterwards.

    ``prefix``: read an existing namespace (e.g. a processing test's) instead of a fresh one. The
    gateway's own page origin (``http://127.0.0.1:<port>``) is always allowed, next to ``ORIGIN``.
    """
    prefix = prefix or f"tgw{uuid.uuid4().hex[:8]}."
    ensure_topics(settings, prefixed(prefix))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Small kernel buffers (inherited by accepted sockets) so a client that stops reading pushes
    # back on the gateway after a few frames instead of after megabytes.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    origins = [ORIGIN, f"http://127.0.0.1:{port}"]
    options: dict[str, Any] = {"topic_prefix": prefix, "allowed_origins": origins, "port": port, **overrides}
    gw = GatewaySettings(**options, jwt_secret=SECRET)
    log = (logs / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.xr_gateway.serve_gateway", str(sock.fileno()),
         json.dumps(gw.model_dump(mode="json", exclude={"jwt_secret"}))],
        pass_fds=[sock.fileno()], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    running = RunningGateway(settings, gw, TokenVerifier.from_settings(gw), port, proc)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"gateway exited with {proc.returncode}; see {logs / 'gateway.log'}"
            try:
                if httpx.get(f"{running.http_url}/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("gateway not ready within 90 s")
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        sock.close()
        delete_topics(settings, lambda n: n.startswith(prefix))


async def open_client(
    gateway: RunningGateway,
    token: str | None = None,
    *,
    query: str = "",
    origin: str | None = None,
    small_buffers: bool = False,
    via_subprotocol: bool = False,
) -> ClientConnection:
    """A websocket client; ``small_buffers``: one that pushes back quickly when it stops reading."""
    headers: dict[str, str] = {}
    subprotocols = ["twin.v1"]
    if token is not None and via_subprotocol:
        subprotocols.append(f"bearer.{token}")
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    sock = None
    if small_buffers:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", gateway.port))
    return await connect(
        gateway.ws_url + query,
        additional_headers=headers,
        subprotocols=subprotocols,  # type: ignore[arg-type]
        origin=origin,  # type: ignore[arg-type]
        sock=sock,
        max_queue=1 if small_buffers else 1024,
        max_size=None,
        open_timeout=30,
    )


async def recv_json(ws: ClientConnection, timeout: float = 30) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), timeout)
    value = json.loads(message)
    assert isinstance(value, dict)
    return value


async def recv_until(ws: ClientConnection, done: Any, timeout: float = 60) -> list[dict[str, Any]]:
    """Messages until one satisfies ``done`` (included)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"condition not met within {timeout}s; got {len(got)} messages: {got[-3:]}")
        message = await recv_json(ws, left)
        got.append(message)
        if done(message):
            return got


async def read_until_closed(
    ws: ClientConnection, timeout: float = 30
) -> tuple[list[dict[str, Any]], int, str]:
    """Every message until the server closes: (messages, close code, close reason)."""
    got: list[dict[str, Any]] = []
    try:
        while True:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except ConnectionClosed as closed:
        frame = closed.rcvd
    if frame is None:
        raise AssertionError("the server closed without a close frame")
    return got, frame.code, frame.reason


async def subscribe(ws: ClientConnection, **filters: Any) -> dict[str, Any]:
    """Subscribe and return the snapshot (or the first frame after ``subscribed`` when resuming)."""
    await ws.send(json.dumps({"type": "subscribe", **filters}))
    got = await recv_until(ws, lambda m: m["type"] == "subscribed")
    assert got[-1]["type"] == "subscribed"
    if got[-1]["resumed"]:
        return got[-1]
    return await recv_json(ws)
