"""Both sinks in one run: each store's writer next to its bare-library loop, and the whole
``twin sink`` path (Kafka → decode → write → commit) on the same records.

Per store, alternating in one run:

(a) the sink's writer: ``add`` + ``flush`` over decoded records (bench/sink_cassandra.py,
    bench/sink_elasticsearch.py say exactly what each includes);
(b) the bare loop: ``execute_concurrent_with_args`` of the same prepared insert, or
    ``helpers.bulk`` of pre-built actions;

and once per store after the rounds, (a+) the full sink: the same number of records produced to a
fresh topic namespace, consumed by :class:`pipelines.sink_runner.SinkRunner` from the first offset
until every offset is committed (decode, DLQ checks, write, offset commit), in this process; the
clock starts once the group has assigned the partitions.

Client CPU is ``time.process_time`` of this process (every thread: the Cassandra driver's event
loop, librdkafka's threads). Needs the local stack (`twin infra up`).

    .venv/bin/python bench/sink_throughput.py --rows 20000 --docs 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sink_cassandra
import sink_elasticsearch
from sink_report import print_table

from pipelines.sink_runner import SinkRunner
from pipelines.topics import delete_topics, ensure_topics
from producers.records import Outgoing
from producers.session import publish_catalog_records
from sinks.base import Sink
from twin.settings import Settings
from twin.topics import TELEMETRY, prefixed


def publish(settings: Settings, prefix: str, records: list[Outgoing]) -> None:
    stats = publish_catalog_records(settings, records, prefix)
    assert stats.acked == len(records), "not every bench record was acknowledged"


def through_kafka(settings: Settings, make_sink: Any, records: list[Outgoing]) -> dict[str, float]:
    """Produce ``records`` under a fresh prefix, then time a SinkRunner over them.

    The clock starts once the group has assigned the partitions (joining is a one-off cost, not
    throughput) and stops when every offset is committed.
    """
    from confluent_kafka import Consumer, TopicPartition

    prefix = f"benchsink{uuid.uuid4().hex[:6]}."
    scoped = settings.model_copy(deep=True)
    scoped.sinks.topic_prefix = prefix
    scoped.elasticsearch.retention_days = 3650
    sink: Sink = make_sink(scoped)
    topics = tuple(t for t in prefixed(prefix) if t.name[len(prefix) :] in sink.topics)
    ensure_topics(scoped, topics)
    publish(scoped, prefix, records)
    probe = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "bench-ends"})
    ends = {
        (t.name, p): probe.get_watermark_offsets(TopicPartition(t.name, p), timeout=10)[1]
        for t in topics
        for p in range(t.partitions)
    }
    probe.close()
    runner = SinkRunner(scoped, sink, group_id=f"bench-sink-{uuid.uuid4().hex[:6]}")
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    while runner.assigned == 0:
        if not thread.is_alive():
            msg = f"sink runner stopped: {runner.stats.last_error}"
            raise RuntimeError(msg)
        time.sleep(0.001)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while not all(runner.stats.committed.get(tp, 0) >= end for tp, end in ends.items() if end):
        if not thread.is_alive():
            msg = f"sink runner stopped: {runner.stats.last_error}"
            raise RuntimeError(msg)
        time.sleep(0.01)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    stop.set()
    thread.join(60)
    delete_topics(settings, lambda name: name.startswith(prefix))
    n = len(records)
    return {"records": n, "per_s": n / wall, "cpu_s": cpu, "per_cpu_s": n / cpu if cpu else 0.0}


def cassandra_e2e(settings: Settings, rows: int) -> dict[str, float]:
    from sinks.cassandra import CassandraSink, Migrator
    from sinks.cassandra.connection import connect
    from sinks.cassandra.schema import replication

    keyspace = f"bench_e2e_{uuid.uuid4().hex[:8]}"
    cluster, session = connect(settings)
    try:
        Migrator(session, keyspace).migrate(replication_options=replication(1))
        values = sink_cassandra.fresh(sink_cassandra.sim_telemetry(rows))
        records = [Outgoing(TELEMETRY, v["machine_id"], v) for v in values]
        return through_kafka(settings, lambda s: CassandraSink(s, keyspace=keyspace), records)
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()


def elasticsearch_e2e(settings: Settings, docs: int) -> dict[str, float]:
    from sinks.elasticsearch import ElasticsearchSink, templates
    from twin.clients import elasticsearch

    index_prefix = f"bench-e2e-{uuid.uuid4().hex[:8]}"
    records = [
        Outgoing(r.topic, r.value["machine_id"], r.value)
        for r in sink_elasticsearch.records(docs, sink_elasticsearch.T0)
    ]
    try:
        return through_kafka(settings, lambda s: ElasticsearchSink(s, index_prefix=index_prefix), records)
    finally:
        client = elasticsearch(settings)
        client.options(ignore_status=404).indices.delete(index=f"{index_prefix}-*")
        for name in templates(index_prefix):
            client.options(ignore_status=404).indices.delete_index_template(name=name)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000, help="Cassandra telemetry rows per run")
    parser.add_argument("--docs", type=int, default=20_000, help="Elasticsearch records per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = Settings()

    cas = sink_cassandra.run(settings, rows=args.rows, rounds=args.rounds)
    cas_e2e = cassandra_e2e(settings, args.rows)
    es = sink_elasticsearch.run(settings, docs=args.docs, rounds=args.rounds)
    es_e2e = elasticsearch_e2e(settings, args.docs)

    print(f"Cassandra: {args.rows:,} telemetry rows per run, {args.rounds} rounds (medians)")
    print_table(
        "rows",
        [
            ("(a) CassandraSink add+flush", cas["ours"]),
            ("(b) bare execute_concurrent_with_args", cas["bare"]),
            ("(a+) `twin sink cassandra` from Kafka (one run)", cas_e2e),
        ],
    )
    bare = cas["bare"]
    print(
        f"ratio (a)/(b): wall {cas['ratio_wall']:.2f}, CPU {cas['ratio_cpu']:.2f}; "
        f"(a+)/(b): wall {cas_e2e['per_s'] / bare['per_s']:.2f}, "
        f"CPU {cas_e2e['per_cpu_s'] / bare['per_cpu_s']:.2f}\n"
    )
    print(
        f"Elasticsearch: {args.docs:,} records per run ({es['documents']:,} documents), {args.rounds} rounds"
    )
    scale = es["documents"] / es["records"]  # documents per record (alarms also update current state)
    es_e2e_docs = {**es_e2e, "per_s": es_e2e["per_s"] * scale, "per_cpu_s": es_e2e["per_cpu_s"] * scale}
    print_table(
        "docs",
        [
            ("(a) ElasticsearchSink add+flush", es["ours"]),
            ("(b) bare helpers.bulk, pre-built actions", es["bare"]),
            ("(a+) `twin sink elasticsearch` from Kafka (one run)", es_e2e_docs),
        ],
    )
    bare = es["bare"]
    print(
        f"ratio (a)/(b): wall {es['ratio_wall']:.2f}, CPU {es['ratio_cpu']:.2f}; "
        f"(a+)/(b): wall {es_e2e_docs['per_s'] / bare['per_s']:.2f}, "
        f"CPU {es_e2e_docs['per_cpu_s'] / bare['per_cpu_s']:.2f}"
    )


if __name__ == "__main__":
    main()
