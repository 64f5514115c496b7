"""The topic catalog: every topic's name, key, value schema, partitions, retention, compaction and DLQ.

This is the one place topics are defined; `twin topics create` makes the broker and the registry
match it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from twin.errors import ConfigError

DAY_MS = 24 * 3600 * 1000


# Catalog names: code refers to topics by these constants, never by string literals.
TELEMETRY = "factory.telemetry"
PRODUCTION = "factory.production"
STATE = "factory.state"
ANOMALIES = "twin.anomalies"
MAINTENANCE = "twin.maintenance"
ALARMS = "twin.alarms"
ALARM_COMMANDS = "twin.alarm-commands"
KPIS = "twin.kpis"
TWIN_STATE = "twin.state"
SCHEDULE_REQUESTS = "schedule.requests"
SCHEDULE_PLANS = "schedule.plans"
MAINTENANCE_JOB = "maintenance:"
"""Job ids on schedule.requests and schedule.plans that start with this are maintenance windows
(``maintenance:<machine>:<component>``), not parts."""
RL_STEPS = "rl.steps"


def dlq_name(real_name: str) -> str:
    """The dead-letter topic of the topic ``real_name`` (the one naming rule for DLQs)."""
    return f"{real_name}.dlq"


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
        return dlq_name(self.name)

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
    Topic(TELEMETRY, "machine_id", "telemetry", partitions=6, description="machine sensor readings"),
    Topic(PRODUCTION, "machine_id", "part_produced", description="parts finished, good or scrap"),
    Topic(STATE, "machine_id", "machine_state", description="machine state changes"),
    Topic(ANOMALIES, "machine_id", "anomaly", description="detector findings"),
    Topic(MAINTENANCE, "machine_id", "maintenance", description="remaining-useful-life estimates"),
    Topic(ALARMS, "machine_id", "alarm", retention_ms=30 * DAY_MS, description="alarm lifecycle"),
    Topic(ALARM_COMMANDS, "machine_id", "alarm_command", description="ack/clear commands"),
    Topic(KPIS, "line_id", "kpi_window", retention_ms=30 * DAY_MS, description="OEE and KPI windows"),
    Topic(TWIN_STATE, "machine_id", "twin_state", compacted=True, description="latest state per machine"),
    Topic(SCHEDULE_REQUESTS, "line_id", "schedule_request", partitions=3, description="re-plan requests"),
    Topic(SCHEDULE_PLANS, "line_id", "schedule_plan", partitions=3, description="scheduler answers"),
    Topic(RL_STEPS, "env_id", "rl_step", partitions=3, description="RL agent steps"),
)

_BY_NAME = {t.name: t for t in CATALOG}


def topic(name: str, prefix: str = "") -> Topic:
    """The catalog entry for ``name`` (under ``prefix``, a namespace); a ConfigError names the known
    topics otherwise.

    >>> topic(KPIS, prefix="t1.").value_subject
    't1.twin.kpis-value'
    """
    try:
        entry = _BY_NAME[name]
    except KeyError:
        msg = f"unknown topic {name!r}; the catalog has: {', '.join(_BY_NAME)}"
        raise ConfigError(msg) from None
    return replace(entry, name=prefix + entry.name) if prefix else entry


def by_real_name(real_name: str, prefix: str = "") -> Topic:
    """The (prefixed) catalog entry of a topic's real name ``prefix + catalog name``."""
    if prefix and not real_name.startswith(prefix):
        msg = f"topic {real_name!r} is not under the namespace {prefix!r}"
        raise ConfigError(msg)
    return topic(real_name[len(prefix) :], prefix)


def dlq_topic(source: Topic) -> Topic:
    """The dead-letter topic of ``source``: raw bytes, kept longer so nothing is lost unseen."""
    return Topic(
        source.dlq, source.key, "", partitions=1, retention_ms=30 * DAY_MS, description="dead letters"
    )


def prefixed(prefix: str, topics: tuple[Topic, ...] = CATALOG) -> tuple[Topic, ...]:
    """The catalog under a namespace (``prefix`` + name): several twins, or tests, on one cluster."""
    return tuple(replace(t, name=prefix + t.name) for t in topics) if prefix else topics
