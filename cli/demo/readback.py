"""Steps that read the run back: its records from Kafka, its history from Cassandra and Elasticsearch."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from cli.demo.offsets import Offsets
from cli.demo.run import SOURCE_TOPICS, DemoRun
from cli.infra import console
from twin.errors import InfraError


def read_back(run: DemoRun) -> None:
    """Every record the line produced is on the broker and decodes; an InfraError otherwise."""
    after = run.after
    written = {
        t: sum(end - run.before.get(tp, 0) for tp, end in after.items() if tp[0] == t) for t in SOURCE_TOPICS
    }
    decoded = _decode_range(run, run.before, after)
    for t in SOURCE_TOPICS:
        acked = run.produced.get(t, 0)
        console.print(f"  {t:<20} acked {acked:>8,}  on broker {written[t]:>8,}  decoded {decoded[t]:>8,}")
    if any(decoded[t] != written[t] or written[t] < run.produced.get(t, 0) for t in SOURCE_TOPICS):
        msg = "the demo could not read back everything it produced"
        raise InfraError(msg)


def _decode_range(run: DemoRun, before: Offsets, after: Offsets, limit_s: float = 120) -> dict[str, int]:
    """Decode exactly this run's records (the offset ranges it added) with Confluent's own
    AvroDeserializer, not ours: the proof that any Avro consumer reads what the twin writes."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from twin.clients import kafka_consumer, schema_registry

    pending = {tp: end for tp, end in after.items() if end > before.get(tp, 0)}
    decoded = dict.fromkeys(SOURCE_TOPICS, 0)
    consumer = kafka_consumer(run.settings, group_id="twin-demo-reader")
    consumer.assign([TopicPartition(t, p, before.get((t, p), 0)) for (t, p) in pending])
    try:
        with schema_registry(run.settings) as registry:
            deserializer = AvroDeserializer(registry)
            deadline = time.monotonic() + limit_s
            while pending and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None or msg.error() is not None:
                    continue
                key = (msg.topic() or "", msg.partition() or 0)
                if deserializer(msg.value(), SerializationContext(key[0], MessageField.VALUE)) is not None:
                    decoded[key[0]] += 1
                if (msg.offset() or 0) + 1 >= pending.get(key, 0):
                    pending.pop(key, None)
    finally:
        consumer.close()
    return decoded


def show_history(run: DemoRun) -> None:
    """What the stores now hold for this run, read back the way ``twin query`` and ``twin search`` do."""
    from sinks.cassandra.connection import connect
    from sinks.cassandra.queries import History
    from sinks.cassandra.rows import ALARM_STATUSES
    from sinks.elasticsearch import search
    from twin.clients import elasticsearch

    settings = run.settings
    cluster, session = connect(settings)
    try:
        history = History(session, settings.cassandra.keyspace)
        alarms = list(history.alarms_by_status(ALARM_STATUSES, since_ms=run.started_ms, limit=1000))
    finally:
        cluster.shutdown()
    since = datetime.fromtimestamp(run.started_ms / 1000, tz=UTC)
    client = elasticsearch(settings)
    try:
        found = search(client, "", index_prefix=settings.elasticsearch.index_prefix, since=since, limit=1000)
    finally:
        client.close()
    console.print(
        f"Cassandra: {len(alarms)} alarms raised in this run on record (twin query alarms); "
        f"Elasticsearch: {len(found)} alarms, anomalies and machine events searchable (twin search)"
    )
