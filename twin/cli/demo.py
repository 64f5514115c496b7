"""``twin demo``: the main job. For now: the stack, an Avro round trip through Kafka, the status."""

from __future__ import annotations

import time
import uuid

import typer


from twin.clients import kafka_admin, kafka_consumer, kafka_producer, schema_registry
from twin.errors import InfraError
from twin.settings import Settings

from twin.cli.infra import console  # noqa: E402  (one console for the whole CLI)

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
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from twin.cli.infra import _infra, _table

    settings = Settings()
    infra = _infra(settings)
    console.rule("1. local servers")
    with console.status("bringing the stack up…"):
        infra.up()

    console.rule(f"2. Avro events through {DEMO_TOPIC}")
    admin = kafka_admin(settings)
    futures = admin.create_topics([NewTopic(DEMO_TOPIC, num_partitions=3, replication_factor=1)])
    try:
        futures[DEMO_TOPIC].result(timeout=30)
        console.print(f"created topic {DEMO_TOPIC}")
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            msg = f"could not create topic {DEMO_TOPIC}: {exc}"
            raise InfraError(msg) from exc
        console.print(f"topic {DEMO_TOPIC} exists")

    registry = schema_registry(settings)
    serializer = AvroSerializer(registry, PING_SCHEMA)
    deserializer = AvroDeserializer(registry)
    ctx = SerializationContext(DEMO_TOPIC, MessageField.VALUE)

    run_id = uuid.uuid4().hex[:8]
    producer = kafka_producer(settings)
    acked: list[int] = []
    failed: list[str] = []

    def delivered(err: object, msg: object) -> None:
        if err is not None:
            failed.append(str(err))
        else:
            acked.append(1)

    sent_ids = set()
    for seq in range(events):
        event = {
            "event_id": str(uuid.uuid4()),
            "event_time": int(time.time() * 1000),
            "source": f"twin-demo-{run_id}",
            "seq": seq,
        }
        sent_ids.add(event["event_id"])
        producer.produce(DEMO_TOPIC, key=run_id, value=serializer(event, ctx), on_delivery=delivered)
        producer.poll(0)
    producer.flush(30)
    console.print(f"produced {events} events: {len(acked)} acked, {len(failed)} failed")
    schema_id = registry.get_latest_version(f"{DEMO_TOPIC}-value").schema_id
    console.print(f"schema registered as subject {DEMO_TOPIC}-value, id {schema_id}")

    consumer = kafka_consumer(settings, group_id=f"twin-demo-{run_id}")
    consumer.subscribe([DEMO_TOPIC])
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while len(seen & sent_ids) < len(sent_ids) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        value = deserializer(msg.value(), ctx)
        if value and value["event_id"] in sent_ids:
            seen.add(value["event_id"])
    consumer.close()
    console.print(f"consumed and decoded {len(seen)}/{len(sent_ids)} of this run's events")
    if seen != sent_ids:
        msg = f"only {len(seen)} of {len(sent_ids)} demo events came back within 60s"
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
