"""Run `twin process` workers against the real broker and read what they made."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from pipelines.topics import delete_topics, ensure_topics
from processors.base import plain
from producers.records import EventMapper, Outgoing
from producers.session import publish_catalog_records
from sim import Simulator, load_factory
from tests.integration.producers.helpers import consume_all
from twin.settings import Settings
from twin.topics import prefixed
from twin.topics import topic as catalog_topic

START_MS = 1_764_000_000_000
# The first consumer group on a fresh broker waits for __consumer_offsets to load.
_COORDINATOR_STARTING = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}
DEFAULT_LAYOUT = Path(__file__).resolve().parents[3] / "sim" / "factories" / "default.yaml"
INPUTS = ("factory.telemetry", "factory.production", "factory.state")
OUTPUTS = ("twin.anomalies", "twin.alarms", "twin.kpis", "twin.state", "schedule.requests")


@dataclass
class Namespace:
    """A private set of catalog topics (``prefix`` + name) and a private consumer group."""

    settings: Settings
    prefix: str
    app_id: str
    logs: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    behind: dict[str, int] = field(default_factory=dict)  # uncommitted messages by partition, last read

    def name(self, catalog_name: str) -> str:
        return self.prefix + catalog_name

    def produce_sim(self, hours: float, seed: int = 1) -> list[Outgoing]:
        """The simulator's events for ``hours`` into this namespace; returns them as published."""
        sim = Simulator(load_factory(), seed=seed, start_time_ms=START_MS)
        mapper = EventMapper(seed)
        records = [mapper.map(e) for e in sim.run(until_ms=START_MS + int(hours * 3_600_000))]
        self.publish(records)
        return records

    def publish(self, records: list[Outgoing]) -> None:
        publish(self.settings, self.prefix, records)

    def start_worker(
        self, tag: str = "w", factory: Path = DEFAULT_LAYOUT, rules: Path | None = None
    ) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["TWIN_PROCESSORS__TOPIC_PREFIX"] = self.prefix
        env["TWIN_PROCESSORS__SESSION_TIMEOUT_S"] = "6"
        with (self.logs / f"{tag}-{len(self.workers)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "process", "--app-id", self.app_id, "--metrics-port", "0",
                 "--no-create-topics", "--log-level", "WARNING", "--factory", str(factory),
                 *(["--rules", str(rules)] if rules is not None else [])],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.workers.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def committed_fraction(self) -> float:
        """Share of the input messages whose offsets the workers' group has committed."""
        lag, total = self._lag()
        return 1.0 if total == 0 else 1 - lag / total

    def _lag(self) -> tuple[int, int]:
        """(uncommitted, total) input messages; retried while a fresh broker loads its coordinator."""
        for _ in range(60):
            try:
                return self._lag_once()
            except KafkaException as exc:
                if not exc.args[0].retriable() and exc.args[0].code() not in _COORDINATOR_STARTING:
                    raise
                time.sleep(0.5)
        return self._lag_once()

    def _lag_once(self) -> tuple[int, int]:
        consumer = Consumer(
            {"bootstrap.servers": self.settings.kafka.bootstrap_servers, "group.id": self.app_id}
        )
        try:
            tps = [
                TopicPartition(self.name(t), p)
                for t in (*INPUTS, "twin.alarm-commands")
                for p in range(catalog_topic(t).partitions)
            ]
            line = f"{self.app_id}-{self.prefix}line-events"
            metadata = consumer.list_topics(timeout=10)
            if line in metadata.topics:
                tps += [TopicPartition(line, p) for p in metadata.topics[line].partitions]
            lag = total = 0
            behind: dict[str, int] = {}
            for tp in consumer.committed(tps, timeout=10):
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                done = tp.offset if tp.offset >= 0 else low
                lag += max(0, high - done)
                total += high - low
                if high > done:
                    behind[f"{tp.topic}[{tp.partition}]"] = high - done
            self.behind = behind
            return lag, total
        finally:
            consumer.close()

    def wait_processed(self, limit_s: float = 240) -> None:
        """Until every input (and every forwarded line event) is committed, and stays so."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            for proc in self.workers:
                if proc.poll() not in (None, 0, -signal.SIGKILL):
                    raise AssertionError(f"worker exited with {proc.returncode}: see {self.logs}")
            lag, total = self._lag()
            if total and lag == 0:
                time.sleep(3)  # forwarded line events from the last checkpoint
                if self._lag()[0] == 0:
                    return
            time.sleep(1)
        raise AssertionError(
            f"inputs not all processed within {limit_s}s (lag {self._lag()}, uncommitted by partition:"
            f" {self.behind}); logs: {self.logs}"
        )

    def outputs(self, *names: str) -> dict[str, list[dict[str, Any]]]:
        got = consume_all(self.settings, [self.name(n) for n in names])
        by: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for r in got:
            by[r["_topic"][len(self.prefix) :]].append(plain(r))
        return by


@contextmanager
def namespace(settings: Settings, tmp_path: Path) -> Iterator[Namespace]:
    tag = uuid.uuid4().hex[:8]
    ns = Namespace(settings, f"t{tag}.", f"test-proc-{tag}", tmp_path)
    ensure_topics(settings, prefixed(ns.prefix))
    try:
        yield ns
    finally:
        ns.stop_all()
        delete_topics(settings, lambda n: n.startswith((ns.prefix, f"{ns.app_id}-")))


def publish(settings: Settings, prefix: str, records: list[Outgoing]) -> None:
    """Produce catalog ``records`` into the ``prefix`` namespace; every one acknowledged."""
    stats = publish_catalog_records(settings, records, prefix)
    assert stats.acked == len(records) and stats.failed == 0


def windows_recomputed(production: list[Outgoing], size_s: int, until_ms: int) -> Counter[tuple[str, int]]:
    """Parts per (machine, window start) straight from the input events, for windows ending by ``until_ms``."""
    size = size_s * 1000
    counts: Counter[tuple[str, int]] = Counter()
    for o in production:
        t = int(o.record["event_time"])
        start = t - t % size
        if start + size <= until_ms:
            counts[(o.key, start)] += 1
    return counts


def dedup_by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records by event id; a repeated id must carry the same content (a replay, not a new fact)."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        body = {k: v for k, v in r.items() if not k.startswith("_")}
        seen = out.get(r["event_id"])
        if seen is not None:
            diff = {
                k: (seen.get(k), body.get(k)) for k in set(seen) | set(body) if seen.get(k) != body.get(k)
            }
            assert not diff, f"id {r['event_id']} ({r.get('_topic')}) reused for different content: {diff}"
        out[r["event_id"]] = body
    return out


def read_raw(settings: Settings, topic: str, limit_s: float = 30) -> list[tuple[bytes, dict[str, str]]]:
    """Every (value, headers) on ``topic`` up to its current end, undecoded (a DLQ holds raw bytes)."""
    from confluent_kafka import OFFSET_BEGINNING

    from twin.dlq import headers_dict

    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"raw-{uuid.uuid4().hex}"}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        ends = {}
        for p in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        out: list[tuple[bytes, dict[str, str]]] = []
        deadline = time.monotonic() + limit_s
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            out.append((msg.value() or b"", headers_dict(msg.headers())))
            if (msg.offset() or 0) + 1 >= ends.get(msg.partition() or 0, 0):
                ends.pop(msg.partition() or 0, None)
        return out
    finally:
        consumer.close()
