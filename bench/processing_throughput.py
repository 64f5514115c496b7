"""Stream processing: the Faust worker next to a plain confluent-kafka loop running the same logic.

(a) faust:  `twin process` (pipelines/processing.py): Faust agents, noack streams, checkpoints
            (outputs acknowledged, snapshots on a table changelog, then offsets committed)
(b) plain:  a confluent-kafka consume loop in this file driving the same MachineStage/LineStage
            (decode → event-time merge → the steps of processors/stages.py), with
            the same forwarding through a line-events topic, snapshots to a compacted topic and
            commits after the outputs and snapshots are acknowledged

Both run as subprocesses on the same pre-produced simulator events (default line, seed 1), in
alternating rounds, each with a fresh consumer group and fresh state. Throughput is measured in the
steady middle of the drain (from 10% to 80% of the outputs, read from the broker; see
``throughput``); CPU is the worker process's own (all threads) over the same span. That is a
*backlog* rate: a live stream arrives a few records per fetch, so each path then gets a live ramp
(25% of its backlog rate up to 100%, 15% steps of ``--step-s``) and its maximum rate is the highest
step it keeps up with (p99 under 1 s). Latency: a fresh live stream at 50% of that maximum, with
event_time stamped at send, read back from twin.state's broker timestamps: delivery latency =
output timestamp - input event time; and, for comparison with earlier runs, at 50% of the backlog
rate. Needs the local stack (`twin infra up`).

    .venv/bin/python bench/processing_throughput.py --hours 2 --rounds 3 --latency-s 20
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Consumer, KafkaException, TopicPartition

from pipelines.processing import twin_config
from pipelines.stage import Inbound, LineStage, MachineStage, Outbound, Stage
from pipelines.topics import delete_topics, ensure_topics
from processors.stages import MACHINE_INPUTS
from producers.session import ProduceSession, publish_catalog_records, simulator_records
from schemas import Codecs, codec_for
from sim import Simulator, load_factory
from sim.loader import DEFAULT_FACTORY_PATH
from twin.clients import kafka_admin, kafka_consumer, kafka_producer, produce_blocking, schema_registry
from twin.settings import Settings
from twin.topics import PRODUCTION, STATE, TELEMETRY, TWIN_STATE, prefixed
from twin.topics import topic as catalog_topic

ROOT = Path(__file__).resolve().parents[1]
START_MS = 1_764_000_000_000


# -- (b) the plain loop ------------------------------------------------------------------------
def plain_worker(prefix: str, group: str) -> None:
    """Consume, process with the same stages, produce, snapshot, commit; until SIGTERM."""
    settings = Settings()
    settings.processors.factory_file = DEFAULT_FACTORY_PATH
    config = twin_config(settings)
    codecs = Codecs(schema_registry(settings), prefix=prefix, logical_types=False)
    line_topic, changelog = f"{group}-line-events", f"{group}-state"
    admin = kafka_admin(settings)
    from confluent_kafka.admin import NewTopic

    for future in admin.create_topics(
        [NewTopic(line_topic, 6, 1), NewTopic(changelog, 6, 1, config={"cleanup.policy": "compact"})]
    ).values():
        future.result(30)
    machines = MachineStage(config, codecs, line_topic, prefix)
    lines = LineStage(config, codecs, prefix)
    producer = kafka_producer(settings, **{"linger.ms": 5})
    consumer = kafka_consumer(settings, group_id=group)
    consumer.subscribe([prefix + t for t in MACHINE_INPUTS] + [line_topic])
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))

    def caught_up(stage: Stage) -> Callable[[str, int], bool]:
        def fetched_all(topic: str, partition: int) -> bool:
            seen = stage.last_offset.get((topic, partition))
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            return (
                high is not None
                and high >= 0
                and ((seen is None and high == 0) or (seen is not None and seen + 1 >= high))
            )

        return fetched_all

    def send(outs: list[Outbound]) -> None:
        for o in outs:
            produce_blocking(producer, o.topic, o.value, o.key, headers=o.headers)

    stages: dict[str, Stage] = {prefix + t: machines for t in MACHINE_INPUTS} | {line_topic: lines}
    checks = {stage.name: caught_up(stage) for stage in (machines, lines)}

    offsets: dict[tuple[str, int], int] = {}
    last_checkpoint = time.monotonic()
    while running[0]:
        for stage in (machines, lines):
            stage.idle(time.monotonic())  # a merge's hold runs while we wait for input
        batch = consumer.consume(500, 0.2)
        now = time.monotonic()
        for msg in batch:
            if msg.error() is not None:
                continue
            inbound = Inbound(
                msg.topic() or "", msg.partition() or 0, msg.offset() or 0, msg.key(), msg.value()
            )
            send(stages[inbound.topic].offer(inbound, now))
        for stage in (machines, lines):
            send(stage.release(checks[stage.name], now))
        for stage in (machines, lines):
            for m in stage.released:
                offsets[(m.topic, m.partition)] = m.offset + 1
            stage.released.clear()
        if offsets and (now - last_checkpoint >= 1.0 or len(batch) == 0):
            # Same order as the Faust runner: outputs acknowledged, then snapshots, then offsets.
            producer.flush(60)
            for stage in (machines, lines):
                for snap in stage.snapshots():
                    produce_blocking(producer, changelog, snap.data, snap.key, partition=snap.partition)
            producer.flush(60)
            consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
            )
            offsets.clear()
            last_checkpoint = now
    consumer.close()


# -- the harness --------------------------------------------------------------------------------
def committed(probe: Consumer, tps: list[TopicPartition]) -> int:
    """The group's committed offsets on ``tps``, summed (``probe`` carries the group id)."""
    for _ in range(60):
        try:
            return sum(max(tp.offset, 0) for tp in probe.committed(tps, timeout=10))
        except KafkaException:
            time.sleep(0.5)
    return 0


def produced(probe: Consumer, tps: list[TopicPartition]) -> int:
    """Messages on ``tps`` so far (high watermarks, summed)."""
    return sum(probe.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in tps)


def input_tps(prefix: str) -> list[TopicPartition]:
    return [TopicPartition(prefix + t, p) for t in MACHINE_INPUTS for p in range(catalog_topic(t).partitions)]


def start(path: str, prefix: str, group: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TWIN_PROCESSORS__TOPIC_PREFIX": prefix}
    if path == "faust":
        cmd = [sys.executable, "-m", "cli", "process", "--app-id", group, "--metrics-port", "0",
               "--no-create-topics", "--factory", str(DEFAULT_FACTORY_PATH)]  # fmt: skip
    else:
        cmd = [sys.executable, __file__, "plain", "--prefix", prefix, "--group", group]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def throughput(settings: Settings, path: str, prefix: str, total: int) -> tuple[float, float]:
    """(events/s wall, events per CPU-second) in the steady middle of draining the backlog.

    Progress is read from the broker: the worker's twin.state outputs (about one per input), polled
    every 20 ms. The clock and the worker's CPU meter run from the moment outputs for 10% of the
    inputs are on the broker to the moment outputs for 80% are; outputs are turned back into inputs
    with the round's own outputs-per-input (all outputs once every input offset is committed, over
    the inputs). The start-up, the group join, Faust's table recovery, a first burst while the
    output producer connects, and the wait for the last commit stay out, for both paths alike.
    This bench used to count from the first *commit* to the last, a start that depends on the
    path and the run: Faust's first commit came after 700 to 14,000 processed events, the plain
    loop's after about 24,000, and the events and CPU before it were left out.
    """
    group = f"bench-{path}-{uuid.uuid4().hex[:6]}"
    tps = input_tps(prefix)
    outputs = [TopicPartition(prefix + TWIN_STATE, p) for p in range(catalog_topic(TWIN_STATE).partitions)]
    probe = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    before = produced(probe, outputs)
    proc = start(path, prefix, group)
    ps = psutil.Process(proc.pid)

    def alive() -> None:
        if proc.poll() is not None:
            msg = f"{path} worker exited with {proc.returncode}"
            raise RuntimeError(msg)

    def wait_for(outs: float) -> tuple[int, float, float]:
        while (n := produced(probe, outputs) - before) < outs:
            alive()
            time.sleep(0.02)
        return n, time.perf_counter(), sum(ps.cpu_times()[:2])

    try:
        n0, t0, cpu0 = wait_for(0.1 * total)
        n1, t1, cpu1 = wait_for(0.8 * total)
        while committed(probe, tps) < total:
            alive()
            time.sleep(0.1)
        per_input = (produced(probe, outputs) - before) / total
        events = (n1 - n0) / per_input
        return events / (t1 - t0), events / (cpu1 - cpu0)
    finally:
        probe.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def live(
    settings: Settings, path: str, schedule: list[tuple[float, float]], input_linger_ms: float = 5
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """Stream live simulator events through a fresh worker at each (rate, seconds) of ``schedule``.

    Returns (event time ms, latency ms) of every twin.state output, and per step (start ms, the rate
    actually sent). The inputs' producer lingers ``input_linger_ms`` (our clients' default, 5 ms;
    the simulator's publisher uses 20 ms for throughput, which would add up to 20 ms to every input).
    """
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    ensure_topics(settings, prefixed(prefix))
    group = f"bench-{path}-{uuid.uuid4().hex[:6]}"
    proc = start(path, prefix, group)
    steps: list[tuple[int, float]] = []
    try:
        time.sleep(12)  # start-up and group join before the clock starts
        overrides: dict[str, Any] = {"linger.ms": input_linger_ms}
        session = ProduceSession(settings, prefix=prefix, **overrides)
        for t in (TELEMETRY, PRODUCTION, STATE):
            session.codec(prefix + t)
        sim = Simulator(load_factory(), seed=3, start_time_ms=int(time.time() * 1000))
        source = simulator_records(sim, 3, int(time.time() * 1000))
        for rate, seconds in schedule:
            t0, n = time.monotonic(), 0
            step_start = int(time.time() * 1000)
            while time.monotonic() - t0 < seconds:
                due = t0 + n / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                o = next(source)
                record = {**o.record, "event_time": int(time.time() * 1000)}
                value = session.codec(prefix + o.topic).encode(record)
                session.publisher.publish(prefix + o.topic, o.key, value)
                n += 1
            steps.append((step_start, n / (time.monotonic() - t0)))
        session.publisher.flush(60)
        session.close()
        time.sleep(5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    try:
        return state_latencies(settings, prefix), steps
    finally:
        cleanup(settings, prefix)


def latency(
    settings: Settings, path: str, rate: float, seconds: float, input_linger_ms: float = 5
) -> list[float]:
    """Milliseconds from an input's event time to its twin.state output on the broker."""
    pairs, _ = live(settings, path, [(rate, seconds)], input_linger_ms)
    return [lat for _, lat in pairs]


def sustained(
    settings: Settings, path: str, ceiling: float, step_s: float = 8.0
) -> tuple[float, list[tuple[float, int, float, float, bool]]]:
    """The highest live rate a path keeps up with: a ramp from 25% of ``ceiling`` up to it.

    One worker, steps of ``step_s`` seconds, each 15% faster. A step is kept up with when its p99
    latency stays under 1 s: a rate above capacity grows a backlog for the whole step (12% over
    capacity for 8 s is ~1 s behind) and every later step inherits it. Returns the last rate of the
    unbroken run of kept-up steps (0 if none) and per step (rate sent, outputs, p50, p99, kept up).
    """
    rates = []
    rate = 0.25 * ceiling
    while rate <= ceiling * 1.001:
        rates.append(rate)
        rate *= 1.15
    pairs, steps = live(settings, path, [(r, step_s) for r in rates])
    table: list[tuple[float, int, float, float, bool]] = []
    best, broken = 0.0, False
    for i, (begin, sent) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else float("inf")
        lats = [lat for t, lat in pairs if begin <= t < end]
        ok = bool(lats) and pct(lats, 0.99) < 1000
        table.append((sent, len(lats), pct(lats, 0.5), pct(lats, 0.99), ok))
        broken = broken or not ok
        if not broken:
            best = sent
    return best, table


def state_latencies(settings: Settings, prefix: str) -> list[tuple[int, float]]:
    """(event time, latency ms) of every twin.state output under ``prefix``."""
    state = catalog_topic(TWIN_STATE, prefix)
    topic = state.name
    codec = codec_for(schema_registry(settings), state, register=False, logical_types=False)
    consumer = kafka_consumer(settings, group_id=f"bench-reader-{uuid.uuid4().hex[:6]}")
    ends: dict[int, int] = {}
    for p in range(state.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    out: list[tuple[int, float]] = []
    deadline = time.monotonic() + 60
    while ends and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error() is not None:
            continue
        event_time = codec.decode(msg.value())["event_time"]
        out.append((event_time, msg.timestamp()[1] - event_time))
        if (msg.offset() or 0) + 1 >= ends.get(msg.partition() or 0, 0):
            ends.pop(msg.partition() or 0, None)
    consumer.close()
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "plain"])
    parser.add_argument("--prefix", default="")
    parser.add_argument("--group", default="")
    parser.add_argument("--hours", type=float, default=2.0, help="simulated hours of input")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-s", type=float, default=20.0)
    parser.add_argument("--step-s", type=float, default=8.0, help="seconds per step of the live-rate ramp")
    args = parser.parse_args()
    if args.mode == "plain":
        plain_worker(args.prefix, args.group)
        return

    settings = Settings()
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    ensure_topics(settings, prefixed(prefix))
    sim = Simulator(load_factory(), seed=1, start_time_ms=START_MS)
    records = list(simulator_records(sim, 1, START_MS, START_MS + int(args.hours * 3_600_000)))
    publish_catalog_records(settings, records, prefix)
    total = len(records)

    results: dict[str, list[tuple[float, float]]] = {"faust": [], "plain": []}
    for _ in range(args.rounds):
        for path in ("faust", "plain"):
            results[path].append(throughput(settings, path, prefix, total))
    rates = {
        p: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
        for p, r in results.items()
    }
    paths = (("faust", "(a) Faust worker (`twin process`)"), ("plain", "(b) plain confluent-kafka loop"))
    # A backlog drains in big fetches; a live stream arrives a few records per fetch, so a path's
    # live capacity is below its backlog rate. Latency is measured at 50% of the highest *live*
    # rate the path keeps up with (a ramp), and, as before, at 50% of its backlog rate.
    ramps = {p: sustained(settings, p, rates[p][0], args.step_s) for p, _ in paths}
    lat = {p: latency(settings, p, 0.5 * ramps[p][0], args.latency_s) for p, _ in paths}
    backlog_lat = {p: latency(settings, p, 0.5 * rates[p][0], args.latency_s) for p, _ in paths}

    def cell(v: list[float], rate: float) -> str:
        return f"{pct(v, 0.5):,.0f} / {pct(v, 0.99):,.0f} ms ({len(v):,} outputs at {rate:,.0f}/s)"

    print(f"{total:,} simulator events ({args.hours:g} simulated hours), {args.rounds} rounds per path")
    print(
        "| path | backlog events/s (median) | events per CPU-second (median) | highest live rate kept up "
        "| latency p50 / p99 at 50% of it | p50 / p99 at 50% of the backlog rate |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for path, label in paths:
        w, c = rates[path]
        live_max = ramps[path][0]
        print(f"| {label} | {w:,.0f} | {c:,.0f} | {live_max:,.0f} | {cell(lat[path], 0.5 * live_max)} "
              f"| {cell(backlog_lat[path], 0.5 * w)} |")  # fmt: skip
    for path, label in paths:
        print(f"\nramp, {label} (sent events/s: outputs, p50 / p99 ms, kept up):")
        print("  " + "; ".join(f"{r:,.0f}: {n}, {p50:,.0f} / {p99:,.0f}{'' if ok else ' X'}"
                               for r, n, p50, p99, ok in ramps[path][1]))  # fmt: skip
    print(
        f"\nratio (a)/(b): wall {rates['faust'][0] / rates['plain'][0]:.2f}, "
        f"CPU {rates['faust'][1] / rates['plain'][1]:.2f}"
    )
    print(json.dumps({"rounds": results}, indent=None))
    cleanup(settings, prefix)


def cleanup(settings: Settings, prefix: str) -> None:
    """Delete the run's topics: inputs, outputs, DLQs, and the workers' groups' internal topics."""
    delete_topics(settings, lambda n: n.startswith((prefix, "bench-faust-", "bench-plain-")))


if __name__ == "__main__":
    main()
