"""Websocket fan-out: the XR gateway next to a minimal ``websockets.broadcast()`` server (the floor).

Both read the same prefixed ``twin.state`` topic, fed by one producer at a fixed rate (default 10
state updates/s with ``event_time`` stamped at send), and serve N websocket clients (default 1000)
held by load-generator processes. They run one after the other in one invocation (alternating
rounds), on the same events rate, so the noisy shared machine affects both alike.

Reported per side: delivery latency p50/p99 (event time -> client receive, same clock), frames/s
out, frames per server CPU-second, server RSS per client ((RSS with N idle clients - RSS with none)
/ N), RSS over time while streaming, and, for the gateway, how long K clients that stop reading
take to be closed (4008). Before either server starts, ``twin.state`` is pre-filled with as many old
updates as the gateway's resume ring holds (``--prefill``), so its bounded buffers start full and
the RSS series shows the steady state. Needs the local stack (`twin infra up`).

    .venv/bin/python bench/gateway_fanout.py --clients 1000 --duration 60
    .venv/bin/python bench/gateway_fanout.py --clients 50 --duration 10 --slow 2   # quick check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
MACHINES = ("cnc-1", "press-1", "weld-1", "paint-1", "qc-1")


# -- servers (child processes) -------------------------------------------------------------------
def serve_gateway(prefix: str, port: int, secret: str) -> None:
    from twin.logs import configure_logging
    from twin.settings import Settings
    from xr_gateway.app import create_app
    from xr_gateway.auth import TokenVerifier
    from xr_gateway.server import serve
    from xr_gateway.settings import GatewaySettings

    configure_logging("WARNING")
    gw = GatewaySettings(topic_prefix=prefix, port=port, jwt_secret=secret, max_clients=100_000)
    serve(create_app(Settings(), gw, TokenVerifier.from_settings(gw)), gw)


def serve_floor(prefix: str, port: int) -> None:
    """The least a fan-out can do: decode, serialise once, ``websockets.broadcast`` to everyone."""
    from confluent_kafka import OFFSET_END, TopicPartition
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    from schemas import codec_for
    from twin import topics as catalog
    from twin.clients import kafka_consumer, schema_registry
    from twin.settings import Settings

    settings = Settings()
    entry = catalog.topic(catalog.TWIN_STATE, prefix)
    topic = entry.name
    codec = codec_for(schema_registry(settings), entry, logical_types=False)
    clients: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def fan_out(texts: list[str]) -> None:
            for text in texts:
                broadcast(clients, text)

        def consume() -> None:
            consumer = kafka_consumer(
                settings, f"bench-floor-{uuid.uuid4().hex[:8]}", **{"fetch.wait.max.ms": 100}
            )
            parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in parts])
            while True:
                msg = consumer.poll(0.2)
                if msg is None or msg.error() is not None:
                    continue
                batch = [msg, *consumer.consume(999, 0)]
                texts = [
                    json.dumps({"type": "state", "data": codec.decode(m.value())}, separators=(",", ":"))
                    for m in batch
                    if m.error() is None
                ]
                loop.call_soon_threadsafe(fan_out, texts)

        threading.Thread(target=consume, daemon=True).start()
        async with serve(handler, "127.0.0.1", port, compression=None, max_queue=16):
            await asyncio.Future()

    asyncio.run(main())


# -- load generator (child processes) ------------------------------------------------------------
def load(url: str, clients: int, token: str, slow: int, out: str) -> None:
    """Hold ``clients`` connections (+ ``slow`` that stop reading) until SIGTERM; write results."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    latencies: list[float] = []
    frames = 0
    closed_codes: dict[str, int] = {}
    slow_closed_after: list[float] = []
    stop = asyncio.Event()

    async def reader(i: int) -> None:
        nonlocal frames
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        query = "?streams=state" if token else ""
        for attempt in range(5):
            try:
                ws = await connect(url + query, additional_headers=headers, open_timeout=60, max_queue=256)
                break
            except (OSError, TimeoutError):
                await asyncio.sleep(0.5 * (attempt + 1))
        else:
            closed_codes["connect_failed"] = closed_codes.get("connect_failed", 0) + 1
            return
        connected.add(i)
        try:
            async for data in ws:
                now_ms = time.time() * 1000
                message = data if isinstance(data, str) else data.decode()
                # Only state frames carry what we time; find the field without parsing twice.
                at = message.find('"event_time":')
                if at >= 0 and message.startswith('{"type":"state"'):
                    end = message.find(",", at)
                    event_ms = int(message[at + 13 : end])
                    if event_ms:  # 0: the producer's warm-up record, not timed
                        latencies.append(now_ms - event_ms)
                        frames += 1
        except ConnectionClosed as exc:
            code = str(exc.rcvd.code) if exc.rcvd else "none"
            closed_codes[code] = closed_codes.get(code, 0) + 1

    async def sleeper() -> None:
        """Connects, reads the first state frame, then never reads again (small receive buffer)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        host, port = url.split("//")[1].split("/", maxsplit=1)[0].split(":")
        sock.connect((host, int(port)))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        query = "?streams=state" if token else ""
        ws = await connect(url + query, additional_headers=headers, sock=sock, max_queue=1, open_timeout=60)
        while not str(await ws.recv()).startswith('{"type":"state"'):
            pass
        started = time.monotonic()
        await ws.wait_closed()  # the library stops reading once its 1-message queue is full
        slow_closed_after.append(time.monotonic() - started)
        code = str(ws.close_code)
        closed_codes[f"slow:{code}"] = closed_codes.get(f"slow:{code}", 0) + 1

    connected: set[int] = set()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        tasks = []
        for i in range(clients):
            tasks.append(asyncio.create_task(reader(i)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # do not SYN-flood the accept queue
        tasks += [asyncio.create_task(sleeper()) for _ in range(slow)]
        while len(connected) + closed_codes.get("connect_failed", 0) < clients:
            await asyncio.sleep(0.1)
        print(f"CONNECTED {len(connected)}", flush=True)
        await stop.wait()
        result = {"latencies": latencies, "frames": frames, "closed": closed_codes}
        result["slow_closed_after"] = slow_closed_after
        Path(out).write_text(json.dumps(result))
        os._exit(0)  # 1000 half-open sockets close with the process faster than one by one

    asyncio.run(main())


# -- orchestration -------------------------------------------------------------------------------
def state_record(machine: str, n: int, t: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "event_time": t, "source": "bench", "correlation_id": "bench",
        "line_id": "line-1", "machine_id": machine, "machine_type": "cnc", "state": "RUNNING",
        "state_since": t, "active_alarms": [], "oee": 0.8, "parts_good": n, "parts_scrap": 0,
        "signals": [{"name": s, "value": 1.5 * n, "unit": "mm/s"}
                    for s in ("spindle_speed", "spindle_load", "vibration_rms", "temperature", "power")],
    }  # fmt: skip


def prefill(settings: Any, prefix: str, count: int) -> None:
    """``count`` old state updates in the topic before any server starts: the gateway replays
    twin.state at start-up, so its bounded buffers (the resume ring) start full and the RSS series
    shows the steady state, not the buffers filling."""
    from schemas import codec_for
    from twin import topics as catalog
    from twin.clients import kafka_producer, produce_blocking, schema_registry

    entry = catalog.topic(catalog.TWIN_STATE, prefix)
    codec = codec_for(schema_registry(settings), entry)
    producer = kafka_producer(settings)
    t = int(time.time() * 1000) - 3_600_000
    for n in range(count):
        machine = MACHINES[n % len(MACHINES)]
        produce_blocking(
            producer, entry.name, codec.encode(state_record(machine, -1 - n, t)), machine.encode()
        )
        producer.poll(0)
    if producer.flush(60):
        raise SystemExit("prefill: records not acknowledged")


def produce(settings: Any, prefix: str, rate: float, stop: threading.Event, sent: list[int]) -> None:
    from schemas import codec_for
    from twin import topics as catalog
    from twin.clients import kafka_producer, produce_blocking, schema_registry

    entry = catalog.topic(catalog.TWIN_STATE, prefix)
    codec = codec_for(schema_registry(settings), entry)
    producer = kafka_producer(settings, **{"linger.ms": 0})
    period, n = 1.0 / rate, 0
    warm_up = True  # the first send waits for metadata: an untimed record (event_time 0) takes it
    next_at = time.monotonic()
    while not stop.is_set():
        machine = MACHINES[n % len(MACHINES)]
        t = 0 if warm_up else int(time.time() * 1000)
        produce_blocking(producer, entry.name, codec.encode(state_record(machine, n, t)), machine.encode())
        producer.poll(0)
        if warm_up:
            producer.flush(10)
            warm_up = False
            time.sleep(1.0)  # clients get it (untimed), conflation has nothing to merge afterwards
            next_at = time.monotonic()
            continue
        n += 1
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))
    producer.flush(10)
    sent.append(n)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise SystemExit(f"port {port} not open within {limit_s}s")


def run_side(
    side: str, args: argparse.Namespace, settings: Any, prefix: str, workdir: Path
) -> dict[str, Any]:
    port, secret = free_port(), secrets.token_urlsafe(48)
    me = [sys.executable, str(Path(__file__).resolve())]
    cmd = (
        [*me, "_gateway", prefix, str(port), secret]
        if side == "gateway"
        else [*me, "_floor", prefix, str(port)]
    )
    server = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    token = ""
    try:
        wait_port(port, server)
        if side == "gateway":
            from xr_gateway.auth import Role, TokenVerifier

            token = TokenVerifier(secret, audience="factory-twin-gateway", issuer="factory-twin").mint(
                "bench", Role.VIEWER, 3600
            )
            while httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code != 200:
                time.sleep(0.2)
        ps = psutil.Process(server.pid)
        time.sleep(1)
        rss_idle = ps.memory_info().rss
        loaders, outs = [], []
        per = [args.clients // args.loaders + (i < args.clients % args.loaders) for i in range(args.loaders)]
        slow = args.slow if side == "gateway" else 0
        for i, n in enumerate(per):
            out = workdir / f"{side}-{i}.json"
            outs.append(out)
            s = slow // args.loaders + (i < slow % args.loaders)
            loaders.append(subprocess.Popen(
                [*me, "_load", f"ws://127.0.0.1:{port}/ws", str(n), token, str(s), str(out)],
                cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
            ))  # fmt: skip
        for proc in loaders:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("CONNECTED"):
                raise SystemExit(f"load generator failed: {line!r}")
        time.sleep(2)
        rss_clients = ps.memory_info().rss
        cpu0 = ps.cpu_times()
        stop, sent = threading.Event(), list[int]()
        producer = threading.Thread(target=produce, args=(settings, prefix, args.rate, stop, sent))
        started = time.monotonic()
        producer.start()
        rss_series: list[tuple[float, float]] = []
        while time.monotonic() - started < args.duration:
            time.sleep(min(5.0, args.duration))
            rss_series.append((round(time.monotonic() - started, 1), round(ps.memory_info().rss / 2**20, 1)))
        stop.set()
        producer.join()
        elapsed = time.monotonic() - started
        time.sleep(1.5)  # the last frames land
        cpu1 = ps.cpu_times()
        for proc in loaders:
            proc.send_signal(signal.SIGTERM)
        for proc in loaders:
            proc.wait(60)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    results = [json.loads(o.read_text()) for o in outs]
    lat = sorted(x for r in results for x in r["latencies"])
    frames = sum(r["frames"] for r in results)
    closed: dict[str, int] = {}
    for r in results:
        for k, v in r["closed"].items():
            closed[k] = closed.get(k, 0) + v
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    slow_after = [x for r in results for x in r["slow_closed_after"]]
    return {
        "side": side,
        "clients": args.clients,
        "events_sent": sent[0] if sent else 0,
        "frames_received": frames,
        "expected_frames": (sent[0] if sent else 0) * args.clients,
        "frames_per_s": round(frames / elapsed, 1),
        "latency_p50_ms": round(statistics.median(lat), 1) if lat else None,
        "latency_p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 1) if lat else None,
        "latency_max_ms": round(lat[-1], 1) if lat else None,
        "server_cpu_s": round(cpu, 2),
        "frames_per_cpu_s": round(frames / cpu, 0) if cpu > 0 else None,
        "rss_idle_mib": round(rss_idle / 2**20, 1),
        "rss_per_client_kib": round((rss_clients - rss_idle) / max(1, args.clients) / 1024, 1),
        "rss_over_time_mib": rss_series,
        "closed": closed,
        "slow_closed_after_s": [round(x, 1) for x in sorted(slow_after)],
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        role, rest = sys.argv[1], sys.argv[2:]
        if role == "_gateway":
            serve_gateway(rest[0], int(rest[1]), rest[2])
        elif role == "_floor":
            serve_floor(rest[0], int(rest[1]))
        elif role == "_load":
            load(rest[0], int(rest[1]), rest[2], int(rest[3]), rest[4])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument(
        "--rate", type=float, default=10.0, help="state updates per second (all to every client)"
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds of streaming per side and round"
    )
    parser.add_argument("--rounds", type=int, default=1, help="gateway/floor alternations")
    parser.add_argument("--loaders", type=int, default=2, help="load-generator processes")
    parser.add_argument("--slow", type=int, default=10, help="gateway clients that stop reading")
    parser.add_argument(
        "--prefill",
        type=int,
        default=None,
        help="old state updates produced first (default: the gateway's resume ring size, so it starts full)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from pipelines.topics import delete_topics, ensure_topics
    from twin.settings import Settings
    from twin.topics import ALARM_COMMANDS, ALARMS, ANOMALIES, KPIS, TWIN_STATE, prefixed, topic

    settings = Settings()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    read = (TWIN_STATE, ALARMS, KPIS, ANOMALIES, ALARM_COMMANDS)
    ensure_topics(settings, prefixed(prefix, tuple(topic(name) for name in read)))
    from xr_gateway.settings import GatewaySettings

    count = GatewaySettings().resume_buffer_frames if args.prefill is None else args.prefill
    if count:
        prefill(settings, prefix, count)
    workdir = ROOT / ".twin" / "bench-gateway"
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for _ in range(args.rounds):
            for side in ("gateway", "floor"):
                row = run_side(side, args, settings, prefix, workdir)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        delete_topics(settings, lambda n: n.startswith(prefix))
    print()
    print(
        f"{'side':8} {'p50 ms':>8} {'p99 ms':>8} {'frames/s':>9} {'frames/CPU-s':>12} {'KiB/client':>10} "
        f"{'RSS MiB first->last':>20} {'delivered':>10}"
    )
    for r in rows:
        series = r["rss_over_time_mib"]
        rss = f"{series[0][1]} -> {series[-1][1]}" if series else "-"
        print(f"{r['side']:8} {r['latency_p50_ms']!s:>8} {r['latency_p99_ms']!s:>8} {r['frames_per_s']:>9} "
              f"{r['frames_per_cpu_s']!s:>12} {r['rss_per_client_kib']:>10} {rss:>20} "
              f"{r['frames_received']}/{r['expected_frames']:<}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
