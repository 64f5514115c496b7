"""Where the analytics read history: Cassandra's history tables through the Spark Cassandra
Connector, or the raw topics straight from Kafka (periods not yet in Cassandra, backfills).

Both give the same frames (``jobs.spark.schema``). Cassandra reads name their partitions
(``machine_id IN (...) AND day IN (...)``, the machines from ``machines_by_line``), so the connector
reads those partitions only, never the whole table. Kafka reads take the range by record timestamp,
strip the 5-byte Confluent header (magic byte, schema id) and decode with ``from_avro`` and the
writer schema the registry holds for each id found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from jobs.spark import schema as S
from twin import topics
from twin.errors import AnalyticsError
from twin.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

CASSANDRA = "org.apache.spark.sql.cassandra"
TABLES = ("states", "parts", "telemetry", "alarms", "anomalies", "plans", "requests")
STATE_LOOKBACK = timedelta(days=1)
"""States are read from this long before the range: the state a machine was in when it began."""
ALARM_LOOKBACK = timedelta(days=7)
"""Alarms raised this long before the range still count when they stand in it."""


@dataclass(slots=True)
class History:
    """One frame per history table (``jobs.spark.schema``); a table not read is an empty frame."""

    states: DataFrame
    parts: DataFrame
    telemetry: DataFrame
    alarms: DataFrame
    anomalies: DataFrame
    plans: DataFrame
    requests: DataFrame
    machines: dict[str, list[str]]
    """Per line, its machines (machines_by_line, or as found in the events)."""


def _days(start: datetime, end: datetime) -> list[date]:
    first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _between(column: str, start: datetime, end: datetime) -> Column:
    from pyspark.sql import functions as F

    return (F.col(column) >= F.lit(start.astimezone(UTC))) & (F.col(column) < F.lit(end.astimezone(UTC)))


def _empty(spark: SparkSession, shape: StructType) -> DataFrame:
    return spark.createDataFrame([], shape)


def _conform(df: DataFrame, shape: StructType) -> DataFrame:
    """``df`` with exactly ``shape``'s columns, in order and type (a missing column is null)."""
    from pyspark.sql import functions as F

    have = set(df.columns)
    return df.select(
        *[
            (F.col(f.name) if f.name in have else F.lit(None)).cast(f.dataType).alias(f.name)
            for f in shape.fields
        ]
    )


def from_cassandra(
    spark: SparkSession,
    settings: Settings,
    *,
    start: datetime,
    end: datetime,
    line_id: str | None = None,
    keyspace: str | None = None,
    tables: tuple[str, ...] = TABLES,
) -> History:
    """The history of [start, end) (states from ``STATE_LOOKBACK`` earlier) from Cassandra."""
    from pyspark.sql import functions as F

    ks = keyspace or settings.cassandra.keyspace

    def table(name: str) -> DataFrame:
        return spark.read.format(CASSANDRA).options(keyspace=ks, table=name).load()

    lines = table("machines_by_line")
    if line_id is not None:
        lines = lines.where(F.col("line_id") == line_id)
    machines: dict[str, list[str]] = {}
    for row in lines.select("line_id", "machine_id").collect():
        machines.setdefault(row["line_id"], []).append(row["machine_id"])
    ids = sorted({m for ms in machines.values() for m in ms})

    def machine_days(name: str, since: datetime) -> DataFrame:
        df = table(name)
        if not ids:
            return df.limit(0)
        days = _days(since, end)
        return df.where(F.col("machine_id").isin(ids) & F.col("day").isin(days)).where(
            _between("event_time", since, end)
        )

    def lines_table(name: str) -> DataFrame:
        df = table(name)
        if not machines:
            return df.limit(0)
        return df.where(F.col("line_id").isin(sorted(machines))).where(_between("event_time", start, end))

    frames: dict[str, DataFrame] = {}
    if "states" in tables:
        frames["states"] = _conform(machine_days("machine_states", start - STATE_LOOKBACK), S.STATES)
    if "parts" in tables:
        frames["parts"] = _conform(machine_days("parts", start), S.PARTS)
    if "telemetry" in tables:
        frames["telemetry"] = _conform(machine_days("telemetry", start), S.TELEMETRY)
    if "anomalies" in tables:
        frames["anomalies"] = _conform(machine_days("anomalies", start), S.ANOMALIES)
    if "alarms" in tables:
        alarms = table("alarms_by_machine")
        alarms = alarms.where(F.col("machine_id").isin(ids)) if ids else alarms.limit(0)
        frames["alarms"] = _conform(
            alarms.where(_between("start_time", start - ALARM_LOOKBACK, end)), S.ALARMS
        )
    if "plans" in tables:
        frames["plans"] = _conform(lines_table("schedule_plans"), S.PLANS)
    if "requests" in tables:
        frames["requests"] = _conform(lines_table("schedule_requests"), S.REQUESTS)
    return _history(spark, frames, machines, line_id)


def _history(
    spark: SparkSession, frames: dict[str, DataFrame], machines: dict[str, list[str]], line_id: str | None
) -> History:
    shapes = {
        "states": S.STATES,
        "parts": S.PARTS,
        "telemetry": S.TELEMETRY,
        "alarms": S.ALARMS,
        "anomalies": S.ANOMALIES,
        "plans": S.PLANS,
        "requests": S.REQUESTS,
    }
    for name, shape in shapes.items():
        if name not in frames:
            frames[name] = _empty(spark, shape)
        elif line_id is not None:
            frames[name] = frames[name].where(frames[name]["line_id"] == line_id)
    return History(machines=machines, **frames)


# -- Kafka ----------------------------------------------------------------------------------------

_TOPICS = {
    "states": topics.STATE,
    "parts": topics.PRODUCTION,
    "telemetry": topics.TELEMETRY,
    "alarms": topics.ALARMS,
    "anomalies": topics.ANOMALIES,
    "plans": topics.SCHEDULE_PLANS,
    "requests": topics.SCHEDULE_REQUESTS,
}


def kafka_options(settings: Settings) -> dict[str, str]:
    """The spark-sql-kafka options of our Kafka settings (``kafka.``-prefixed consumer settings)."""
    k = settings.kafka
    opts = {
        "kafka.bootstrap.servers": k.bootstrap_servers,
        "kafka.security.protocol": str(k.security_protocol),
    }
    if k.sasl_mechanism:
        opts["kafka.sasl.mechanism"] = k.sasl_mechanism
        password = k.sasl_password.get_secret_value() if k.sasl_password else ""
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if k.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        opts["kafka.sasl.jaas.config"] = (
            f'{module} required username="{k.sasl_username or ""}" password="{password}";'
        )
    if k.ssl_ca_location is not None:
        opts["kafka.ssl.truststore.type"] = "PEM"
        opts["kafka.ssl.truststore.location"] = str(k.ssl_ca_location)
    return opts


def decode_confluent(spark: SparkSession, settings: Settings, raw: DataFrame) -> DataFrame:
    """Kafka rows (binary ``value``) in the Confluent wire format, decoded with their writer schemas
    from the registry into one struct column per schema, unioned by name; ``value`` null rows
    (tombstones) and rows that are not in the wire format are dropped."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    framed = raw.where(F.col("value").isNotNull() & (F.length("value") > 5)).select(
        F.substring("value", 1, 1).alias("magic"),
        F.conv(F.hex(F.substring("value", 2, 4)), 16, 10).cast("int").alias("schema_id"),
        F.expr("substring(value, 6, length(value) - 5)").alias("payload"),
    )
    framed = framed.where(F.col("magic") == F.lit(bytes([0]))).drop("magic")
    ids = sorted(r["schema_id"] for r in framed.select("schema_id").distinct().collect())
    if not ids:
        return framed.limit(0)
    decoded: DataFrame | None = None
    with SchemaRegistryClient(settings.registry.client_config()) as registry:
        for schema_id in ids:
            writer = registry.get_schema(schema_id).schema_str
            part = (
                framed.where(F.col("schema_id") == schema_id)
                .select(from_avro("payload", writer, {"mode": "FAILFAST"}).alias("r"))
                .select("r.*")
            )
            decoded = part if decoded is None else decoded.unionByName(part, allowMissingColumns=True)
    assert decoded is not None
    return decoded


def from_kafka(
    spark: SparkSession,
    settings: Settings,
    *,
    start: datetime,
    end: datetime,
    line_id: str | None = None,
    tables: tuple[str, ...] = TABLES,
    prefix: str | None = None,
) -> History:
    """The history of [start, end) read from the raw topics (``prefix``: the namespace, default the
    sinks' ``TWIN_SINKS__TOPIC_PREFIX``), from the first record appended at ``start`` on."""
    from pyspark.sql import functions as F

    namespace = settings.sinks.topic_prefix if prefix is None else prefix

    def read(name: str, since: datetime) -> DataFrame:
        real = topics.topic(_TOPICS[name], namespace).name
        raw = (
            spark.read.format("kafka")
            .options(**kafka_options(settings))
            .option("subscribe", real)
            .option("startingTimestamp", str(int(since.timestamp() * 1000)))
            # A partition with nothing that late starts at its end (not an error).
            .option("startingOffsetsByTimestampStrategy", "latest")
            .option("endingOffsets", "latest")
            .option("failOnDataLoss", "false")
            .load()
        )
        # A record is appended after its event happened (producers refuse clocks that run ahead), so
        # the record time bounds where the range starts; event time (below) decides what belongs to
        # it: a backfill appends old events late, so the read goes on to the end of each partition.
        return decode_confluent(spark, settings, raw)

    frames: dict[str, DataFrame] = {}
    try:
        if "states" in tables:
            frames["states"] = _conform(read("states", start - STATE_LOOKBACK), S.STATES).where(
                _between("event_time", start - STATE_LOOKBACK, end)
            )
        if "parts" in tables:
            frames["parts"] = _conform(read("parts", start), S.PARTS).where(
                _between("event_time", start, end)
            )
        if "telemetry" in tables:
            t = read("telemetry", start).withColumn(
                "channel_values",
                F.map_from_entries(
                    F.expr(
                        "transform(filter(channels, c -> c.value IS NOT NULL), c -> struct(c.name, c.value))"
                    )
                ),
            )
            frames["telemetry"] = _conform(t, S.TELEMETRY).where(_between("event_time", start, end))
        if "anomalies" in tables:
            frames["anomalies"] = _conform(read("anomalies", start), S.ANOMALIES).where(
                _between("event_time", start, end)
            )
        if "alarms" in tables:
            frames["alarms"] = _latest_alarms(read("alarms", start - ALARM_LOOKBACK))
        if "plans" in tables:
            plans = read("plans", start)
            if "comparison" in plans.columns:
                plans = plans.withColumn(
                    "comparison",
                    F.expr(
                        "transform(comparison, c -> struct(c.solver AS solver, c.status AS status, "
                        "c.objective AS objective, c.gap AS gap, c.solve_time_ms AS solve_time_ms))"
                    ),
                )
            frames["plans"] = _conform(plans, S.PLANS).where(_between("event_time", start, end))
        if "requests" in tables:
            frames["requests"] = _conform(read("requests", start), S.REQUESTS).where(
                _between("event_time", start, end)
            )
    except Exception as exc:
        if type(exc).__name__ in {"SchemaRegistryError"}:
            raise AnalyticsError(f"the schema registry could not give a writer schema: {exc}") from None
        raise
    machines: dict[str, list[str]] = {}
    return _history(spark, frames, machines, line_id)


def _latest_alarms(events: DataFrame) -> DataFrame:
    """The latest lifecycle event of each alarm (highest version, then newest), as ALARMS rows."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not events.columns:
        return events
    order = Window.partitionBy("alarm_id").orderBy(
        F.col("version").desc_nulls_last(), F.col("event_time").desc(), F.col("event_id").desc()
    )
    latest = events.withColumn("_n", F.row_number().over(order)).where(F.col("_n") == 1).drop("_n")
    return _conform(latest, S.ALARMS)
