"""``twin demo``: the main job — the stack, the topics, the simulated line streaming into Kafka."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import typer

from twin.cli.infra import _infra, _table, console
from twin.errors import InfraError
from twin.settings import Settings

SIM_TOPICS = ("factory.telemetry", "factory.production", "factory.state")
DERIVED_TOPICS = ("twin.anomalies", "twin.alarms", "twin.kpis", "twin.state", "schedule.requests")
# A fresh worker group per run: the simulated clock restarts at "now" each run, so state carried
# over from the last demo (whose clock ran ahead) would see this run's events as late.
DEMO_APP_ID = f"twin-demo-{int(time.time())}"


def demo(
    duration: float = typer.Option(20.0, "--duration", min=1, help="Seconds to stream the simulated line."),
    speed: float = typer.Option(120.0, "--speed", min=0.1, help="Simulated seconds per wall second."),
    seed: int = typer.Option(42, "--seed", help="Simulator seed."),
    keep_running: bool = typer.Option(
        True, "--keep-running/--stop", help="Leave the servers running afterwards (stop: `twin infra down`)."
    ),
    gateway_port: int | None = typer.Option(
        None,
        "--gateway-port",
        help="Port of the live WebXR view. Default: TWIN_GATEWAY__PORT, else a free one.",
    ),
    serve: bool | None = typer.Option(
        None,
        "--serve/--no-serve",
        help="Keep serving the WebXR view after the run until Ctrl-C. Default: when run in a terminal.",
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

    console.rule("3. history stores and sinks")
    _migrate(settings)
    sinks = _start_sinks(settings)

    console.rule("4. XR gateway (live WebXR view)")
    try:
        gateway = _start_gateway(settings, gateway_port)
    except BaseException:
        _stop_sinks(sinks)
        raise
    console.print(f"twin gateway --dev (pid {gateway.proc.pid}); open the live view while the line runs:")
    console.print(f"  {gateway.url}", soft_wrap=True, highlight=False)
    console.print(f"  operator token: {gateway.token}", soft_wrap=True, highlight=False)

    try:
        _run_and_show(settings, infra, sinks, gateway, duration, speed, seed)
        if serve if serve is not None else sys.stdin.isatty():
            console.print(f"\nThe gateway keeps serving the live view at {gateway.url}", soft_wrap=True)
            console.print("Ctrl-C stops it.", highlight=False)
            gateway.wait()
    finally:
        gateway.stop()
    if keep_running:
        console.print("Servers keep running; stop them with `twin infra down`.")
    else:
        infra.down()


def _run_and_show(
    settings: Settings,
    infra: Any,
    sinks: dict[str, Any],
    gateway: _DemoGateway,
    duration: float,
    speed: float,
    seed: int,
) -> None:
    """Steps 5-8: the worker, the line streaming, the read-back, history and status."""
    console.rule("5. processing worker")
    derived_before = _end_offsets(settings, DERIVED_TOPICS)
    _skip_history(settings)
    worker = _start_worker(settings)
    watcher = _Watcher(settings, derived_before)
    watcher.start()
    console.print(f"twin process (pid {worker.pid}): anomalies and alarms print below as they happen")

    console.rule(f"6. the simulated line at {speed:g}x for {duration:g}s")
    before = _end_offsets(settings)
    run_started_ms = int(time.time() * 1000)
    try:
        try:
            per_topic = _stream(settings, duration, speed, seed)
            after = _end_offsets(settings)
            _drain(settings, after, worker)
        finally:
            worker.terminate()
            worker.wait(60)
            watcher.stop()
            _delete_internal_topics(settings)
        counts = "  ".join(f"{t} {watcher.counts.get(t, 0):,}" for t in DERIVED_TOPICS)
        console.print(f"derived from this run: {counts}")
        _drain_sinks(settings, sinks)
        gateway.report(console)
    finally:
        _stop_sinks(sinks)

    console.rule("7. read back")
    written = {t: sum(after[tp] - before.get(tp, 0) for tp in after if tp[0] == t) for t in SIM_TOPICS}
    decoded = _read_back(settings, before, after)
    for t in SIM_TOPICS:
        console.print(
            f"  {t:<20} acked {per_topic.get(t, 0):>8,}  on broker {written[t]:>8,}  decoded {decoded[t]:>8,}"
        )
    if any(decoded[t] != written[t] or written[t] < per_topic.get(t, 0) for t in SIM_TOPICS):
        msg = "the demo could not read back everything it produced"
        raise InfraError(msg)

    _show_history(settings, run_started_ms)

    console.rule("8. status")
    console.print(_table(infra.status()))
    s = settings
    console.print(
        "\nWhere to look:\n"
        f"  Kafka            {s.kafka.bootstrap_servers}   (topics: twin topics list)\n"
        f"  Schema registry  {s.registry.url}\n"
        f"  Cassandra        {','.join(s.cassandra.contact_points)}:{s.cassandra.port}\n"
        f"  Elasticsearch    {s.elasticsearch.url}\n"
        f"  Logs             twin infra logs <server>   (files under {s.infra.root / 'logs'})\n"
        "  History          twin query alarms --since 1h   |   twin query kpis --machine M1 --since 1h\n"
        '  Search           twin search "down" --since 1h\n'
        "  More events      twin produce --rate 5000 --duration 30"
    )


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


def _end_offsets(settings: Settings, topics: tuple[str, ...] = SIM_TOPICS) -> Offsets:
    """High watermark of every partition of ``topics``."""
    from confluent_kafka import TopicPartition

    from twin.clients import kafka_consumer

    consumer = kafka_consumer(settings, group_id="twin-demo-offsets")
    try:
        metadata = consumer.list_topics(timeout=10)
        offsets: Offsets = {}
        for t in topics:
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


@dataclass
class _DemoGateway:
    proc: subprocess.Popen[bytes]
    base: str
    token: str

    @property
    def url(self) -> str:
        return f"{self.base}/#token={self.token}"

    def report(self, out: Any) -> None:
        """What the gateway shows now: proof that the live view has this run's twin."""
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"}
        layout = httpx.get(f"{self.base}/api/layout", headers=headers, timeout=10).json()
        machines = httpx.get(f"{self.base}/api/machines", headers=headers, timeout=10).json()
        alarms = httpx.get(f"{self.base}/api/alarms?open_only=true", headers=headers, timeout=10).json()
        ours = [s["id"] for line in layout["lines"] for s in line["stations"]]
        live = {m["machine_id"]: m["state"] for m in machines}
        states = ", ".join(f"{m} {live[m]}" for m in ours if m in live)
        others = len(set(live) - set(ours))
        more = f"; {others} other machines in twin.state (earlier runs)" if others else ""
        out.print(
            f"gateway: {sum(m in live for m in ours)} of {len(ours)} layout machines live ({states}){more}; "
            f"{len(alarms)} open alarms in history"
        )

    def wait(self) -> None:
        with contextlib.suppress(KeyboardInterrupt):
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _start_gateway(settings: Settings, port: int | None, limit_s: float = 90) -> _DemoGateway:
    """``twin gateway --dev`` reading history from Cassandra; its printed operator URL."""
    import httpx

    from xr_gateway.server import bind

    try:  # the configured port if free, else any free one
        sock = bind(settings.gateway.host, port if port is not None else settings.gateway.port)
    except OSError:
        if port is not None:
            raise
        sock = bind(settings.gateway.host, 0)
    chosen = sock.getsockname()[1]
    sock.close()
    log_path = settings.infra.root / "logs" / "demo-gateway.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
                [sys.executable, "-m", "twin", "gateway", "--dev", "--port", str(chosen),
             "--history", "cassandra", "--no-create-topics", "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"twin gateway exited with {proc.returncode}; see {log_path}"
            raise InfraError(msg)
        found = re.search(
            r"WebXR view \(operator\): (http://\S+)/#token=(\S+)", log_path.read_text("utf-8", "replace")
        )
        if found:
            try:
                if httpx.get(f"{found.group(1)}/ready", timeout=5).status_code == 200:
                    return _DemoGateway(proc, found.group(1), found.group(2))
            except httpx.TransportError:
                pass
        time.sleep(0.3)
    proc.kill()
    msg = f"twin gateway was not ready within {limit_s:g}s; see {log_path}"
    raise InfraError(msg)


def _start_worker(settings: Settings) -> Any:
    """``twin process`` in its own process group, logging to the state dir."""
    from sim.loader import DEFAULT_FACTORY_PATH

    log_dir = settings.infra.root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "demo-processors.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "twin", "process", "--app-id", DEMO_APP_ID, "--metrics-port", "0",
             "--no-create-topics", "--factory", str(DEFAULT_FACTORY_PATH)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _skip_history(settings: Settings) -> None:
    """Start the demo's worker group at the end of the inputs: it shows this run, not old events."""
    from confluent_kafka import TopicPartition

    from twin.clients import kafka_consumer

    ends = _end_offsets(settings, (*SIM_TOPICS, "twin.alarm-commands"))
    consumer = kafka_consumer(settings, group_id=DEMO_APP_ID)
    offsets = [TopicPartition(t, p, off) for (t, p), off in ends.items()]
    try:
        _retry_coordinator(lambda: consumer.commit(offsets=offsets, asynchronous=False))
    finally:
        consumer.close()


def _delete_internal_topics(settings: Settings) -> None:
    """The demo worker's changelog and repartition topics: a demo leaves no litter."""
    from pipelines.topics import delete_topics

    delete_topics(settings, lambda n: n.startswith(f"{DEMO_APP_ID}-"))


def _drain(settings: Settings, ends: Offsets, worker: Any, limit_s: float = 120) -> None:
    """Wait until the worker has committed everything this run produced."""
    from confluent_kafka import KafkaException, TopicPartition

    from twin.clients import kafka_consumer

    consumer = kafka_consumer(settings, group_id=DEMO_APP_ID)
    try:
        deadline = time.monotonic() + limit_s
        with console.status("processing what was produced…"):
            while time.monotonic() < deadline:
                if worker.poll() is not None:
                    msg = f"the processing worker exited with {worker.returncode}; see its log"
                    raise InfraError(msg)
                try:
                    committed = consumer.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
                except KafkaException:  # the group coordinator is still loading: ask again
                    time.sleep(0.5)
                    continue
                if all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in committed):
                    time.sleep(2)  # the last checkpoint's line events
                    return
                time.sleep(0.5)
        msg = f"the processing worker did not catch up within {limit_s:g}s"
        raise InfraError(msg)
    finally:
        consumer.close()


class _Watcher:
    """Prints anomalies and alarms of this run as they arrive; counts every derived event."""

    def __init__(self, settings: Settings, start: Offsets) -> None:
        import threading

        self.settings = settings
        self.start_offsets = start
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        time.sleep(1)
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from confluent_kafka import TopicPartition
        from confluent_kafka.schema_registry.avro import AvroDeserializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        from twin.clients import kafka_consumer, schema_registry

        consumer = kafka_consumer(self.settings, group_id="twin-demo-watcher")
        consumer.assign([TopicPartition(t, p, off) for (t, p), off in self.start_offsets.items()])
        with schema_registry(self.settings) as registry:
            deserializer = AvroDeserializer(registry)
            while not self._stop.is_set():
                msg = consumer.poll(0.3)
                if msg is None or msg.error() is not None:
                    continue
                topic = msg.topic() or ""
                self.counts[topic] = self.counts.get(topic, 0) + 1
                if topic not in ("twin.anomalies", "twin.alarms"):
                    continue
                r = deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE))
                if r is None:
                    continue
                at = r["event_time"].strftime("%H:%M:%S")
                if topic == "twin.alarms":
                    console.print(
                        f"  [bold]alarm[/]   {at} {r['machine_id']:<8} {r['alarm_type']:<16} "
                        f"{r['severity']:<8} {r['status']:<14} {r['message']}"
                    )
                else:
                    signals = ", ".join(c["name"] for c in r["contributing"][:3])
                    console.print(
                        f"  anomaly {at} {r['machine_id']:<8} {r['detector']:<20} "
                        f"score {r['score']:.2f} > {r['threshold']:.2f}  ({signals})"
                    )
        consumer.close()


SINKS = ("cassandra", "elasticsearch")


def _migrate(settings: Settings) -> None:
    """``twin db migrate``: the keyspace, tables and TTLs (a no-op when already there)."""
    from sinks.cassandra.connection import connect
    from sinks.cassandra.schema import Migrator, replication

    cluster, session = connect(settings)
    try:
        migrator = Migrator(session, settings.cassandra.keyspace)
        report = migrator.migrate(
            replication_options=replication(settings.cassandra.replication_factor),
            ttl_s=settings.cassandra.ttl_s,
        )
    finally:
        cluster.shutdown()
    new = ", ".join(m.label for m in report.applied) or "none"
    console.print(f"Cassandra keyspace {report.keyspace}: migrations applied now: {new}")


def _sink_topics(name: str) -> tuple[str, ...]:
    if name == "cassandra":
        from sinks.cassandra import CassandraSink

        return CassandraSink.topics
    from sinks.elasticsearch import ElasticsearchSink

    return ElasticsearchSink.topics


def _sink_group(settings: Settings, name: str) -> str:
    return f"{settings.sinks.group_prefix}-{name}"


def _start_sinks(settings: Settings) -> dict[str, Any]:
    """``twin sink cassandra`` and ``twin sink elasticsearch`` as child processes.

    A sink group that has never committed starts at the end of its topics (the demo shows this
    run); one that has keeps its place, so nothing produced between demos is left out of history.
    """
    import subprocess
    import sys

    from confluent_kafka import TopicPartition

    from twin.clients import kafka_consumer

    log_dir = settings.infra.root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: dict[str, Any] = {}
    for name in SINKS:
        group = _sink_group(settings, name)
        ends = _end_offsets(settings, _sink_topics(name))
        consumer = kafka_consumer(settings, group_id=group)
        try:
            committed = _retry_coordinator(
                lambda c=consumer, e=ends: c.committed([TopicPartition(t, p) for t, p in e], timeout=10)
            )
            if all(tp.offset < 0 for tp in committed):
                offsets = [TopicPartition(t, p, off) for (t, p), off in ends.items()]
                _retry_coordinator(lambda c=consumer, o=offsets: c.commit(offsets=o, asynchronous=False))
        finally:
            consumer.close()
        with (log_dir / f"demo-sink-{name}.log").open("ab") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "twin", "sink", name, "--metrics-port", "0", "--no-create-topics"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        console.print(f"twin sink {name} (pid {procs[name].pid}, group {group})")
    return procs


def _retry_coordinator(call: Any) -> Any:
    """``call()``, retried while a fresh broker loads its group coordinator."""
    from confluent_kafka import KafkaException

    for attempt in range(60):
        try:
            return call()
        except KafkaException:
            if attempt == 59:
                raise
            time.sleep(0.5)
    return None


def _drain_sinks(settings: Settings, procs: dict[str, Any], limit_s: float = 180) -> None:
    """Until each sink has committed everything now on its topics (rows written, then commit)."""
    from confluent_kafka import KafkaException, TopicPartition

    from twin.clients import kafka_consumer

    with console.status("writing history to Cassandra and Elasticsearch…"):
        for name, proc in procs.items():
            ends = _end_offsets(settings, _sink_topics(name))
            consumer = kafka_consumer(settings, group_id=_sink_group(settings, name))
            try:
                deadline = time.monotonic() + limit_s
                while True:
                    if proc.poll() is not None:
                        log = f".twin/logs/demo-sink-{name}.log"
                        msg = f"twin sink {name} exited with {proc.returncode}; see {log}"
                        raise InfraError(msg)
                    try:
                        committed = consumer.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
                    except KafkaException:
                        committed = []
                    if committed and all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in committed):
                        break
                    if time.monotonic() > deadline:
                        msg = f"twin sink {name} did not catch up within {limit_s:g}s"
                        raise InfraError(msg)
                    time.sleep(0.5)
            finally:
                consumer.close()
    console.print("history written: every event of this run is in Cassandra and Elasticsearch")


def _stop_sinks(procs: dict[str, Any]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(30)
        except Exception:
            proc.kill()
            proc.wait(10)


def _show_history(settings: Settings, since_ms: int) -> None:
    """What the stores now hold for this run, read back the way `twin query` and `twin search` do."""
    from datetime import UTC, datetime

    from sinks.cassandra.connection import connect
    from sinks.cassandra.queries import History
    from sinks.cassandra.rows import ALARM_STATUSES
    from sinks.elasticsearch import search
    from twin.clients import elasticsearch

    since = datetime.fromtimestamp(since_ms / 1000, tz=UTC)
    cluster, session = connect(settings)
    try:
        history = History(session, settings.cassandra.keyspace)
        alarms = list(history.alarms_by_status(ALARM_STATUSES, since_ms=since_ms, limit=1000))
    finally:
        cluster.shutdown()
    client = elasticsearch(settings)
    try:
        found = search(client, "", index_prefix=settings.elasticsearch.index_prefix, since=since, limit=1000)
    finally:
        client.close()
    console.print(
        f"Cassandra: {len(alarms)} alarms raised in this run on record (twin query alarms); "
        f"Elasticsearch: {len(found)} alarms, anomalies and machine events searchable (twin search)"
    )
