"""Producer throughput: our publishing path next to its peers, alternating in one run.

(a) ours:  ProduceSession.run — Avro encoding (Confluent framing) + idempotent acks=all publish
(b) bare:  a plain confluent-kafka loop producing the same pre-encoded bytes, same producer config
(c) codec: Avro encoding alone (no Kafka), both fastavro's schemaless_writer and our compiled
    encoder (twin._avroenc, what (a) uses), with the Confluent header, on the same records

Records are the simulator's own events (default line, seed 1). Each round runs (a), (b), (c) in
turn on the same records; we report wall events/s and events per CPU-second (process CPU time,
librdkafka's threads included) and the ratio (a)/(b). Needs the local stack (`twin infra up`).

    .venv/bin/python bench/producer_throughput.py --events 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import uuid
from collections.abc import Callable

import fastavro
from confluent_kafka.admin import NewTopic

from producers.publisher import TUNING
from producers.records import EventMapper, Outgoing
from producers.session import ProduceSession
from schemas import load_schema
from sim import Simulator, load_factory
from twin.clients import kafka_admin, kafka_producer
from twin.codec import NATIVE_UNAVAILABLE, native_encoder
from twin.settings import Settings
from twin.topics import topic as catalog_topic


def sim_records(count: int) -> list[Outgoing]:
    simulator = Simulator(load_factory(), seed=1, start_time_ms=1_764_000_000_000)
    mapper = EventMapper(1)
    out: list[Outgoing] = []
    horizon = 1_764_000_000_000
    while len(out) < count:
        horizon += 3_600_000
        out.extend(mapper.map(e) for e in simulator.run(until_ms=horizon))
    return out[:count]


def measure(fn: Callable[[], int]) -> tuple[float, float, int]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    n = fn()
    return time.perf_counter() - wall0, time.process_time() - cpu0, n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    settings = Settings()
    run = uuid.uuid4().hex[:8]
    topics = {
        name: f"bench.{run}.{name}" for name in ("factory.telemetry", "factory.production", "factory.state")
    }
    admin = kafka_admin(settings)
    for future in admin.create_topics(
        [NewTopic(t, num_partitions=6, replication_factor=1) for t in topics.values()]
    ).values():
        future.result(30)

    records = [Outgoing(topics[o.topic], o.key, o.record) for o in sim_records(args.events)]
    by_kind = {t: catalog_topic(name).value_schema for name, t in topics.items()}
    parsed = {t: load_schema(k).parsed for t, k in by_kind.items()}

    session = ProduceSession(settings)
    for bench_topic, key in by_kind.items():
        session.codec(bench_topic, key)
    if not all(session.codec(t).native for t in by_kind):
        print(f"warning: (a) encodes with fastavro: {NATIVE_UNAVAILABLE or 'a schema did not compile'}")
    natives = {t: native_encoder(parsed[t], b"\x00\x00\x00\x00\x01") for t in by_kind}
    pre_encoded = [(o.topic, o.key, session.codec(o.topic).encode(o.record)) for o in records]
    avg_bytes = statistics.mean(len(v) for _, _, v in pre_encoded)

    def ours() -> int:
        session.run(records)
        session.publisher.flush(120)
        return len(records)

    bare_producer = kafka_producer(settings, **TUNING)

    def bare() -> int:
        acked = [0]

        def cb(err: object, msg: object) -> None:
            if err is None:
                acked[0] += 1

        for topic, key, value in pre_encoded:
            while True:
                try:
                    bare_producer.produce(topic, value, key, on_delivery=cb)
                    break
                except BufferError:
                    bare_producer.poll(0.05)
        bare_producer.flush(120)
        return acked[0]

    def fastavro_only() -> int:
        for o in records:
            buf = io.BytesIO()
            buf.write(b"\x00\x00\x00\x00\x01")
            fastavro.schemaless_writer(buf, parsed[o.topic], o.record)
            buf.getvalue()
        return len(records)

    def native_only() -> int:
        encoders = {t: e.encode for t, e in natives.items() if e is not None}
        if len(encoders) != len(natives):
            return 0
        for o in records:
            encoders[o.topic](o.record)
        return len(records)

    runs = (("ours", ours), ("bare", bare), ("fastavro", fastavro_only), ("native", native_only))
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _ in runs}
    for _ in range(args.rounds):
        for name, fn in runs:
            results[name].append(measure(fn))

    def rates(name: str) -> tuple[float, float]:
        wall = statistics.median(n / w for w, _, n in results[name])
        cpu = statistics.median(n / c if c > 0 else 0.0 for _, c, n in results[name])
        return wall, cpu

    print(
        f"{args.events:,} simulator events per run, {avg_bytes:.0f} B average encoded value, {args.rounds} rounds"
    )
    print("| path | wall events/s (median) | events per CPU-second (median) |")
    print("| --- | --- | --- |")
    for name, label in (
        ("ours", "(a) ours: Avro encode + publish"),
        ("bare", "(b) bare confluent-kafka, pre-encoded"),
        ("fastavro", "(c) fastavro encode alone"),
        ("native", "(c) twin._avroenc encode alone"),
    ):
        wall, cpu = rates(name)
        print(f"| {label} | {wall:,.0f} | {cpu:,.0f} |")
    ours_wall, ours_cpu = rates("ours")
    bare_wall, bare_cpu = rates("bare")
    print(f"\nratio (a)/(b): wall {ours_wall / bare_wall:.2f}, CPU {ours_cpu / bare_cpu:.2f}")
    # Per-event cost of ours beyond the bare loop, in CPU microseconds: encoding + bookkeeping.
    print(f"ours beyond bare: {1e6 / ours_cpu - 1e6 / bare_cpu:.2f} CPU-us per event")
    acked_ok = session.stats.acked == session.stats.produced and session.stats.failed == 0
    print(
        f"ours: produced {session.stats.produced:,}, acked {session.stats.acked:,}, failed {session.stats.failed} ({'ok' if acked_ok else 'LOSS'})"
    )
    session.close()
    for future in admin.delete_topics(list(topics.values())).values():
        future.result(30)


if __name__ == "__main__":
    main()
