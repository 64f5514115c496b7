"""Producer throughput: our publishing path next to its peers, alternating in one run.

(a) ours:  ProduceSession.run — Avro encoding (Confluent framing) + idempotent acks=all publish
(b) bare:  a plain confluent-kafka loop producing the same pre-encoded bytes, same producer config
(c) codec: Avro encoding alone (no Kafka), both fastavro's schemaless_writer and our compiled
    encoder (twin._avroenc), with the Confluent header, on the same records

``--encoder`` picks what (a) encodes with: the compiled encoder (``native``, the default, what
``twin produce`` uses when the extension is built), fastavro (``fastavro``: what every install
without the extension gets), or ``both``: two (a) paths in the same rounds, so their ratios to (b)
come from one run on one machine state.

Records are the simulator's own events (default line, seed 1). Each round runs (a), (b), (c) in
turn on the same records; we report wall events/s and events per CPU-second (process CPU time,
librdkafka's threads included) and the ratio (a)/(b). Needs the local stack (`twin infra up`).

    .venv/bin/python bench/producer_throughput.py --events 200000 --rounds 3
    .venv/bin/python bench/producer_throughput.py --events 200000 --rounds 3 --encoder both
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from unittest import mock

import fastavro
from confluent_kafka.admin import NewTopic

from producers.publisher import TUNING
from producers.records import EventMapper, Outgoing
from producers.session import ProduceSession
from schemas import load_schema
from sim import Simulator, load_factory
from twin import codec as codec_module
from twin.clients import kafka_admin, kafka_producer
from twin.codec import NATIVE_UNAVAILABLE, native_encoder
from twin.settings import Settings
from twin.topics import PRODUCTION, STATE, TELEMETRY
from twin.topics import topic as catalog_topic

ENCODERS = ("native", "fastavro")


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


@contextlib.contextmanager
def codecs_encoding_with(encoder: str) -> Iterator[None]:
    """Codecs made inside encode with ``encoder``: for fastavro, ``twin.codec`` finds no compiled
    encoder, as in an install without the extension (ProduceSession takes no such option)."""
    if encoder == "native":
        yield
        return
    with mock.patch.object(codec_module, "native_encoder", return_value=None):
        yield


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--encoder", choices=(*ENCODERS, "both"), default="native", help="what (a) encodes with"
    )
    args = parser.parse_args()
    encoders = ENCODERS if args.encoder == "both" else (args.encoder,)

    settings = Settings()
    prefix = f"bench.{uuid.uuid4().hex[:8]}."
    names = (TELEMETRY, PRODUCTION, STATE)
    topics = [catalog_topic(name, prefix) for name in names]
    admin = kafka_admin(settings)
    for future in admin.create_topics(
        [NewTopic(t.name, num_partitions=6, replication_factor=1) for t in topics]
    ).values():
        future.result(30)

    records = [Outgoing(prefix + o.topic, o.key, o.record) for o in sim_records(args.events)]
    parsed = {t.name: load_schema(t.value_schema).parsed for t in topics}

    sessions: dict[str, ProduceSession] = {}
    for encoder in encoders:
        with codecs_encoding_with(encoder):
            session = sessions[encoder] = ProduceSession(settings, prefix=prefix)
            codecs = [session.codec(t.name) for t in topics]
        if encoder == "native" and not all(c.native for c in codecs):
            print(f"warning: (a) encodes with fastavro: {NATIVE_UNAVAILABLE or 'a schema did not compile'}")
        if encoder == "fastavro" and any(c.native for c in codecs):
            raise SystemExit("error: (a) with --encoder fastavro still encodes natively")
    natives = {t: native_encoder(p, b"\x00\x00\x00\x00\x01") for t, p in parsed.items()}
    any_session = next(iter(sessions.values()))
    pre_encoded = [(o.topic, o.key, any_session.codec(o.topic).encode(o.record)) for o in records]
    avg_bytes = statistics.mean(len(v) for _, _, v in pre_encoded)

    def ours(session: ProduceSession) -> Callable[[], int]:
        def run() -> int:
            session.run(records)
            session.publisher.flush(120)
            return len(records)

        return run

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
        encode = {t: e.encode for t, e in natives.items() if e is not None}
        if len(encode) != len(natives):
            return 0
        for o in records:
            encode[o.topic](o.record)
        return len(records)

    labels = {
        "ours-native": "(a) ours: Avro encode (twin._avroenc) + publish",
        "ours-fastavro": "(a) ours: Avro encode (fastavro) + publish",
        "bare": "(b) bare confluent-kafka, pre-encoded",
        "fastavro": "(c) fastavro encode alone",
        "native": "(c) twin._avroenc encode alone",
    }
    runs = [
        *((f"ours-{e}", ours(s)) for e, s in sessions.items()),
        ("bare", bare),
        ("fastavro", fastavro_only),
        ("native", native_only),
    ]
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
    for name, _ in runs:
        wall, cpu = rates(name)
        print(f"| {labels[name]} | {wall:,.0f} | {cpu:,.0f} |")
    bare_wall, bare_cpu = rates("bare")
    for encoder, session in sessions.items():
        ours_wall, ours_cpu = rates(f"ours-{encoder}")
        print(f"\n(a) encoding with {encoder}:")
        print(f"ratio (a)/(b): wall {ours_wall / bare_wall:.2f}, CPU {ours_cpu / bare_cpu:.2f}")
        # Per-event cost of ours beyond the bare loop, in CPU microseconds: encoding + bookkeeping.
        print(f"ours beyond bare: {1e6 / ours_cpu - 1e6 / bare_cpu:.2f} CPU-us per event")
        stats = session.stats
        acked_ok = stats.acked == stats.produced and stats.failed == 0
        print(
            f"ours: produced {stats.produced:,}, acked {stats.acked:,}, failed {stats.failed} ({'ok' if acked_ok else 'LOSS'})"
        )
        session.close()
    for future in admin.delete_topics([t.name for t in topics]).values():
        future.result(30)


if __name__ == "__main__":
    main()
