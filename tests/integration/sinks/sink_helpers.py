"""A private namespace of topics with a real factory history in it, and sink runners over it."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from pipelines.sink_runner import SinkRunner, run_in_thread
from pipelines.topics import delete_topics, ensure_topics
from processors.base import plain
from processors.stages import TwinConfig, machine_chain
from processors.steps import Chain
from producers.records import EventMapper, Outgoing
from sim import Simulator, load_factory
from sinks.base import Sink
from tests.integration.processors.pipeline_helpers import publish
from twin.settings import Settings
from twin.topics import prefixed
from twin.topics import topic as catalog_topic

START_MS = 1_764_000_000_000
# The processors' outputs the sinks store, besides the raw machine streams.
DERIVED = ("twin.anomalies", "twin.alarms", "twin.kpis", "schedule.requests")


def history(hours: float, seed: int = 1) -> list[Outgoing]:
    """A simulated line's events and what the real processors derive from them, in event-time order.

    The derived events come from the same processors ``twin process`` runs (in-process here, so a
    test does not wait for a worker), with their deterministic ids.
    """
    sim = Simulator(load_factory(), seed=seed, start_time_ms=START_MS)
    mapper = EventMapper(seed)
    config = TwinConfig()
    twins: dict[str, Chain] = {}
    out: list[Outgoing] = []
    watermark = START_MS
    for event in sim.run(until_ms=START_MS + int(hours * 3_600_000)):
        raw = mapper.map(event)
        out.append(raw)
        record = plain(raw.record)
        machine = twins.get(raw.key)
        if machine is None:
            machine = twins[raw.key] = machine_chain(raw.key, config)
        emits = machine.process_one(raw.topic, record)
        if record["event_time"] >= watermark + 1000:
            watermark = record["event_time"]
            for twin in twins.values():
                emits.extend(twin.advance(watermark))
        out.extend(Outgoing(e.topic, e.key, e.record) for e in emits if e.topic in DERIVED)
    return out


@dataclass
class SinkNamespace:
    """Catalog topics under a unique prefix, and sinks reading them with their own groups."""

    settings: Settings
    prefix: str
    runners: list[tuple[SinkRunner, threading.Thread, threading.Event]] = field(default_factory=list)

    def name(self, catalog_name: str) -> str:
        return self.prefix + catalog_name

    def publish(self, records: list[Outgoing]) -> None:
        publish(self.settings, self.prefix, records)

    def publish_raw(self, catalog_name: str, key: bytes, value: bytes) -> None:
        from twin.clients import kafka_producer

        producer = kafka_producer(self.settings)
        producer.produce(self.name(catalog_name), key=key, value=value)
        assert producer.flush(30) == 0

    def start(self, sink: Sink, group: str | None = None) -> SinkRunner:
        runner = SinkRunner(self.settings, sink, group_id=group or f"test-sink-{uuid.uuid4().hex[:8]}")
        thread, stop = run_in_thread(runner)
        self.runners.append((runner, thread, stop))
        assert runner.ready.wait(120), f"sink did not start: {runner.stats.last_error}"
        return runner

    def stop(self, runner: SinkRunner) -> None:
        for r, thread, stop in self.runners:
            if r is runner:
                stop.set()
                thread.join(60)
                assert not thread.is_alive(), "sink runner did not stop"

    def stop_all(self) -> None:
        for _r, _thread, stop in self.runners:
            stop.set()
        for _r, thread, _stop in self.runners:
            thread.join(60)

    def ends(self, topics: tuple[str, ...]) -> dict[tuple[str, int], int]:
        """The current end offset of every non-empty partition of ``topics``."""
        consumer = Consumer({"bootstrap.servers": self.settings.kafka.bootstrap_servers, "group.id": "ends"})
        try:
            out = {}
            for t in topics:
                real = self.name(t)
                for p in range(catalog_topic(t).partitions):
                    low, high = consumer.get_watermark_offsets(TopicPartition(real, p), timeout=10)
                    if high > low:
                        out[(real, p)] = high
            return out
        finally:
            consumer.close()

    def wait_committed(self, runner: SinkRunner, limit_s: float = 240) -> None:
        """Until the runner has committed everything now on its topics."""
        ends = self.ends(runner.sink.topics)
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if all(runner.stats.committed.get(tp, 0) >= end for tp, end in ends.items()):
                return
            time.sleep(0.5)
        behind = {tp: (runner.stats.committed.get(tp, 0), end) for tp, end in ends.items()}
        raise AssertionError(
            f"not committed within {limit_s}s: {behind}; last error {runner.stats.last_error}"
        )


def infra(action: str, server: str) -> None:
    """``twin infra up|down --only <server>`` in a child process (the servers outlive the test)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "cli", "infra", action, "--only", server],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"twin infra {action} --only {server}: {done.stdout}{done.stderr}"


def stream_through_outage(ns: SinkNamespace, sink: Sink, server: str, events: list[Outgoing]) -> SinkRunner:
    """Half the events stored, ``server`` stopped, the other half produced, 30 s down, started again;
    returns the runner once it has committed everything (it must recover by itself)."""
    half = len(events) // 2
    ns.publish(events[:half])
    runner = ns.start(sink)
    ns.wait_committed(runner)
    infra("down", server)
    try:
        ns.publish(events[half:])  # arrives while the store is down
        deadline = time.monotonic() + 60
        while runner.stats.outages == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert runner.stats.outages == 1, f"the sink did not notice that {server} is down"
        time.sleep(30)
        held = ns.ends(runner.sink.topics)
        assert any(runner.stats.committed.get(tp, 0) < end for tp, end in held.items()), (
            f"offsets were committed while {server} was down"
        )
    finally:
        infra("up", server)
    ns.wait_committed(runner, limit_s=240)  # nobody restarts the sink
    assert runner.stats.retries >= 2
    return runner


def count_by_topic(records: list[Outgoing]) -> Counter[str]:
    return Counter(o.topic for o in records)


@contextmanager
def sink_namespace(settings: Settings) -> Iterator[SinkNamespace]:
    prefix = f"s{uuid.uuid4().hex[:8]}."
    scoped = settings.model_copy(deep=True)
    scoped.sinks.topic_prefix = prefix
    scoped.sinks.batch_wait_s = 0.1
    scoped.sinks.retry_max_s = 2.0
    scoped.elasticsearch.retention_days = 3650  # the history starts at START_MS, in the past
    ensure_topics(scoped, prefixed(prefix))
    ns = SinkNamespace(scoped, prefix)
    try:
        yield ns
    finally:
        ns.stop_all()
        delete_topics(scoped, lambda n: n.startswith(prefix))
