"""``twin demo``: the main job — the stack, the topics, the simulated line streaming into Kafka."""

from __future__ import annotations

import time
from typing import Any

import typer

from twin.cli.infra import _infra, _table, console
from twin.errors import InfraError
from twin.settings import Settings

SIM_TOPICS = ("factory.telemetry", "factory.production", "factory.state")


def demo(
    duration: float = typer.Option(20.0, "--duration", min=1, help="Seconds to stream the simulated line."),
    speed: float = typer.Option(60.0, "--speed", min=0.1, help="Simulated seconds per wall second."),
    seed: int = typer.Option(42, "--seed", help="Simulator seed."),
    keep_running: bool = typer.Option(
        True, "--keep-running/--stop", help="Leave the servers running afterwards (stop: `twin infra down`)."
    ),
) -> None:
    """Bring up the local stack, stream the simulated line into Kafka, read it back, show the status."""
    from pipelines.topics import ensure_topics

    settings = Settings()
    infra = _infra(settings)
    console.rule("1. local servers")
    with console.status("bringing the stack up…"):
        infra.up()

    console.rule("2. topics and schemas")
    report = ensure_topics(settings)
    created = sum(line.startswith("created") for line in report)
    console.print(
        f"{len(report)} catalog items checked, {created} topics created; schemas registered (BACKWARD)"
    )

    console.rule(f"3. the simulated line at {speed:g}x for {duration:g}s")
    before = _end_offsets(settings)
    per_topic = _stream(settings, duration, speed, seed)
    after = _end_offsets(settings)

    console.rule("4. read back")
    written = {t: sum(after[tp] - before.get(tp, 0) for tp in after if tp[0] == t) for t in SIM_TOPICS}
    decoded = _read_back(settings, before, after)
    for t in SIM_TOPICS:
        console.print(
            f"  {t:<20} acked {per_topic.get(t, 0):>8,}  on broker {written[t]:>8,}  decoded {decoded[t]:>8,}"
        )
    if any(decoded[t] != written[t] or written[t] < per_topic.get(t, 0) for t in SIM_TOPICS):
        msg = "the demo could not read back everything it produced"
        raise InfraError(msg)

    console.rule("5. status")
    console.print(_table(infra.status()))
    s = settings
    console.print(
        "\nWhere to look:\n"
        f"  Kafka            {s.kafka.bootstrap_servers}   (topics: twin topics list)\n"
        f"  Schema registry  {s.registry.url}\n"
        f"  Cassandra        {','.join(s.cassandra.contact_points)}:{s.cassandra.port}\n"
        f"  Elasticsearch    {s.elasticsearch.url}\n"
        f"  Logs             twin infra logs <server>   (files under {s.infra.root / 'logs'})\n"
        "  More events      twin produce --rate 5000 --duration 30"
    )
    if keep_running:
        console.print("Servers keep running; stop them with `twin infra down`.")
    else:
        infra.down()


def _stream(settings: Settings, duration: float, speed: float, seed: int) -> dict[str, int]:
    from producers import Pacer
    from producers.records import Outgoing
    from producers.session import ProduceSession, simulator_records
    from sim import Simulator, load_factory

    start_ms = int(time.time() * 1000)
    simulator = Simulator(load_factory(), seed=seed, start_time_ms=start_ms)
    session = ProduceSession(settings)
    per_topic: dict[str, int] = {}

    def counted(source: Any) -> Any:
        item: Outgoing
        for item in source:
            per_topic[item.topic] = per_topic.get(item.topic, 0) + 1
            yield item

    last = [0.0]

    def tick(stats: Any) -> None:
        if time.monotonic() - last[0] >= 2:
            last[0] = time.monotonic()
            counts = "  ".join(f"{t.split('.')[1]} {n:,}" for t, n in sorted(per_topic.items()))
            console.print(
                f"  {stats.rate():7,.0f} events/s  acked {stats.acked:>8,}  failed {stats.failed}  | {counts}"
            )

    stats = session.run(
        counted(simulator_records(simulator, seed, start_ms)),
        pacer=Pacer(None, speed),
        duration_s=duration,
        on_tick=tick,
    )
    remaining = session.close()
    console.print(
        f"produced {stats.produced:,}: acked {stats.acked:,}, failed {stats.failed}, "
        f"unacknowledged {remaining}"
    )
    if stats.failed or remaining:
        msg = f"{stats.failed + remaining} events were not acknowledged"
        raise InfraError(msg)
    return per_topic


Offsets = dict[tuple[str, int], int]


def _end_offsets(settings: Settings) -> Offsets:
    """High watermark of every partition of the simulator's topics."""
    from confluent_kafka import TopicPartition

    from twin.clients import kafka_consumer

    consumer = kafka_consumer(settings, group_id="twin-demo-offsets")
    try:
        metadata = consumer.list_topics(timeout=10)
        offsets: Offsets = {}
        for t in SIM_TOPICS:
            for p in metadata.topics[t].partitions:
                offsets[(t, p)] = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
        return offsets
    finally:
        consumer.close()


def _read_back(settings: Settings, before: Offsets, after: Offsets) -> dict[str, int]:
    """Decode exactly this run's records (the offset ranges it added), as any Avro consumer would."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from twin.clients import kafka_consumer, schema_registry

    pending = {tp: end for tp, end in after.items() if end > before.get(tp, 0)}
    decoded = dict.fromkeys(SIM_TOPICS, 0)
    consumer = kafka_consumer(settings, group_id="twin-demo-reader")
    consumer.assign([TopicPartition(t, p, before.get((t, p), 0)) for (t, p) in pending])
    with schema_registry(settings) as registry:
        deserializer = AvroDeserializer(registry)
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            key = (msg.topic() or "", msg.partition() or 0)
            if deserializer(msg.value(), SerializationContext(key[0], MessageField.VALUE)) is not None:
                decoded[key[0]] += 1
            if (msg.offset() or 0) + 1 >= pending.get(key, 0):
                pending.pop(key, None)
    consumer.close()
    return decoded
