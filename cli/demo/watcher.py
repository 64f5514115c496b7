"""Prints this run's anomalies and alarms as the worker derives them; counts every derived event."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cli.infra import console
from twin.errors import DecodeError
from twin.topics import ALARMS, ANOMALIES, SCHEDULE_PLANS

if TYPE_CHECKING:
    from cli.demo.offsets import Offsets
    from twin.settings import Settings


class Watcher:
    """A thread reading the derived topics from ``start`` (their ends before the worker started)."""

    def __init__(self, settings: Settings, start: Offsets, *, machines: Iterable[str]) -> None:
        self.settings = settings
        self.start_offsets = start
        self.counts: Counter[str] = Counter()  # per topic
        # Anomalies and alarms per machine of the demo's factory (other writers may share the topics).
        self.findings: Counter[str] = Counter({m: 0 for m in machines})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        time.sleep(1)  # what the worker wrote just before it stopped
        self._stop.set()
        self._thread.join(10)

    def busiest(self) -> str | None:
        """The machine with the most anomalies and alarms in this run (None before any)."""
        machine, n = max(self.findings.items(), key=lambda kv: kv[1], default=(None, 0))
        return machine if n else None

    def _run(self) -> None:
        from confluent_kafka import TopicPartition

        from schemas import Codecs
        from twin.clients import kafka_consumer, schema_registry

        consumer = kafka_consumer(self.settings, group_id="twin-demo-watcher")
        consumer.assign([TopicPartition(t, p, off) for (t, p), off in self.start_offsets.items()])
        try:
            with schema_registry(self.settings) as registry:
                codecs = Codecs(registry, register=False)
                while not self._stop.is_set():
                    msg = consumer.poll(0.3)
                    if msg is None or msg.error() is not None:
                        continue
                    topic = msg.topic() or ""
                    self.counts[topic] += 1
                    if topic not in (ANOMALIES, ALARMS, SCHEDULE_PLANS):
                        continue
                    try:
                        record = codecs(topic).decode(msg.value())
                    except DecodeError:
                        continue  # the worker dead-letters what it cannot read; so does the view
                    self._show(topic, record)
        finally:
            consumer.close()

    def _show(self, topic: str, r: dict[str, Any]) -> None:
        if topic == SCHEDULE_PLANS:
            from cli.schedule import print_plan

            print_plan(r, console)
            return
        if r["machine_id"] in self.findings:
            self.findings[r["machine_id"]] += 1
        at = r["event_time"].strftime("%H:%M:%S")
        if topic == ALARMS:
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
