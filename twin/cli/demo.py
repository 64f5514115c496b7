"""``twin demo``: the main job. For now: the stack, an Avro round trip through Kafka, the status."""

from __future__ import annotations

import time
import uuid
from typing import Any

import typer

from twin.cli.infra import _infra, _table, console
from twin.clients import kafka_admin, kafka_consumer, kafka_producer, schema_registry
from twin.errors import InfraError
from twin.settings import Settings

DEMO_TOPIC = "twin.demo.ping"
PING_SCHEMA = """
{
  "type": "record", "name": "Ping", "namespace": "dev.factorytwin.demo",
  "doc": "A smoke-test event: proves producer, registry, broker and consumer agree.",
  "fields": [
    {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "source", "type": "string"},
    {"name": "seq", "type": "int"}
  ]
}
"""


def demo(
    events: int = typer.Option(10, "--events", min=1, max=100_000, help="How many demo events to send."),
    keep_running: bool = typer.Option(
        True, "--keep-running/--stop", help="Leave the servers running afterwards (stop: `twin infra down`)."
    ),
) -> None:
    """Bring up the local stack, send Avro events through Kafka and the registry, show the status."""
    settings = Settings()
    infra = _infra(settings)
    console.rule("1. local servers")
    with console.status("bringing the stack up…"):
        infra.up()

    console.rule(f"2. Avro events through {DEMO_TOPIC}")
    _ensure_topic(settings)
    run_id = uuid.uuid4().hex[:8]
    sent = _produce(settings, run_id, events)
    seen = _consume(settings, run_id, sent)
    console.print(f"consumed and decoded {len(seen)}/{len(sent)} of this run's events")
    if seen != sent:
        msg = f"only {len(seen)} of {len(sent)} demo events came back within 60s"
        raise InfraError(msg)

    console.rule("3. status")
    console.print(_table(infra.status()))
    s = settings
    console.print(
        "\nWhere to look:\n"
        f"  Kafka            {s.kafka.bootstrap_servers}\n"
        f"  Schema registry  {s.registry.url}\n"
        f"  Cassandra        {','.join(s.cassandra.contact_points)}:{s.cassandra.port}\n"
        f"  Elasticsearch    {s.elasticsearch.url}\n"
        f"  Logs             twin infra logs <server>   (files under {s.infra.root / 'logs'})"
    )
    if keep_running:
        console.print("Servers keep running; stop them with `twin infra down`.")
    else:
        infra.down()


def _ensure_topic(settings: Settings) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    admin = kafka_admin(settings)  # keep a reference: a destroyed client cancels its futures
    futures = admin.create_topics([NewTopic(DEMO_TOPIC, num_partitions=3, replication_factor=1)])
    try:
        futures[DEMO_TOPIC].result(timeout=30)
        console.print(f"created topic {DEMO_TOPIC}")
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            msg = f"could not create topic {DEMO_TOPIC}: {exc}"
            raise InfraError(msg) from exc
        console.print(f"topic {DEMO_TOPIC} exists")


def _produce(settings: Settings, run_id: str, events: int) -> set[str]:
    with schema_registry(settings) as registry:
        return _produce_with(settings, registry, run_id, events)


def _produce_with(settings: Settings, registry: Any, run_id: str, events: int) -> set[str]:
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    serializer = AvroSerializer(registry, PING_SCHEMA)
    ctx = SerializationContext(DEMO_TOPIC, MessageField.VALUE)
    producer = kafka_producer(settings)
    acked: list[str] = []
    failed: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        (failed if err is not None else acked).append(str(err))

    sent: set[str] = set()
    for seq in range(events):
        event = {
            "event_id": str(uuid.uuid4()),
            "event_time": int(time.time() * 1000),
            "source": f"twin-demo-{run_id}",
            "seq": seq,
        }
        sent.add(str(event["event_id"]))
        producer.produce(DEMO_TOPIC, key=run_id, value=serializer(event, ctx), on_delivery=delivered)
        producer.poll(0)
    producer.flush(30)
    console.print(f"produced {events} events: {len(acked)} acked, {len(failed)} failed")
    schema_id = registry.get_latest_version(f"{DEMO_TOPIC}-value").schema_id
    console.print(f"schema registered as subject {DEMO_TOPIC}-value, id {schema_id}")
    if failed:
        msg = f"{len(failed)} demo events were not acknowledged: {failed[0]}"
        raise InfraError(msg)
    return sent


def _consume(settings: Settings, run_id: str, sent: set[str]) -> set[str]:
    from confluent_kafka.schema_registry.avro import AvroDeserializer

    with schema_registry(settings) as registry:
        deserializer = AvroDeserializer(registry)
        return _consume_with(settings, deserializer, run_id, sent)


def _consume_with(settings: Settings, deserializer: Any, run_id: str, sent: set[str]) -> set[str]:
    from confluent_kafka.serialization import MessageField, SerializationContext

    ctx = SerializationContext(DEMO_TOPIC, MessageField.VALUE)
    consumer = kafka_consumer(settings, group_id=f"twin-demo-{run_id}")
    consumer.subscribe([DEMO_TOPIC])
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    try:
        while len(seen) < len(sent) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            value = deserializer(msg.value(), ctx)
            event_id = str(value["event_id"]) if value else None  # fastavro gives uuid.UUID
            if event_id in sent:
                seen.add(event_id)
    finally:
        consumer.close()
    return seen
