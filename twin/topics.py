"""The topic catalog: every topic's name, key, value schema, partitions, retention, compaction and DLQ.

This is the one place topics are defined; `twin topics create` makes the broker and the registry
match it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from twin.errors import ConfigError

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    key: str  # the event field used as the Kafka key
    value_schema: str  # stem of schemas/avro/<value_schema>.avsc
    partitions: int = 6
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False
    description: str = ""

    @property
    def dlq(self) -> str:
        """Where records that cannot be decoded or validated go, with the reason in headers."""
        return f"{self.name}.dlq"

    @property
    def value_subject(self) -> str:
        """Registry subject of the value schema (Confluent TopicNameStrategy)."""
        return f"{self.name}-value"

    def config(self) -> dict[str, str]:
        """Broker-side topic configuration."""
        conf = {
            "cleanup.policy": "compact" if self.compacted else "delete",
            "retention.ms": str(-1 if self.compacted else self.retention_ms),
            "min.insync.replicas": "1",
        }
        if self.compacted:
            # Keep the latest state per machine; clean soon so a new gateway reads little.
            conf["min.cleanable.dirty.ratio"] = "0.1"
            conf["segment.ms"] = str(3600 * 1000)
        return conf


CATALOG: tuple[Topic, ...] = (
    Topic(
        "factory.telemetry", "machine_id", "telemetry", partitions=6, description="machine sensor readings"
    ),
    Topic("factory.production", "machine_id", "part_produced", description="parts finished, good or scrap"),
    Topic("factory.state", "machine_id", "machine_state", description="machine state changes"),
    Topic("twin.anomalies", "machine_id", "anomaly", description="detector findings"),
    Topic("twin.alarms", "machine_id", "alarm", retention_ms=30 * DAY_MS, description="alarm lifecycle"),
    Topic("twin.alarm-commands", "machine_id", "alarm_command", description="ack/clear commands"),
    Topic("twin.kpis", "line_id", "kpi_window", retention_ms=30 * DAY_MS, description="OEE and KPI windows"),
    Topic("twin.state", "machine_id", "twin_state", compacted=True, description="latest state per machine"),
    Topic("schedule.requests", "line_id", "schedule_request", partitions=3, description="re-plan requests"),
    Topic("schedule.plans", "line_id", "schedule_plan", partitions=3, description="scheduler answers"),
    Topic("rl.steps", "env_id", "rl_step", partitions=3, description="RL agent steps"),
)

_BY_NAME = {t.name: t for t in CATALOG}


def topic(name: str) -> Topic:
    """The catalog entry for ``name``; a ConfigError names the known topics otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        msg = f"unknown topic {name!r}; the catalog has: {', '.join(_BY_NAME)}"
        raise ConfigError(msg) from None


def dlq_topic(source: Topic) -> Topic:
    """The dead-letter topic of ``source``: raw bytes, kept longer so nothing is lost unseen."""
    return Topic(
        source.dlq, source.key, "", partitions=1, retention_ms=30 * DAY_MS, description="dead letters"
    )


def prefixed(prefix: str, topics: tuple[Topic, ...] = CATALOG) -> tuple[Topic, ...]:
    """The catalog under a namespace (``prefix`` + name): several twins, or tests, on one cluster."""
    return tuple(replace(t, name=prefix + t.name) for t in topics) if prefix else topics
