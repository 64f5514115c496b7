"""The shapes every analytics job reads and writes, whatever the source (Cassandra or Kafka).

Sources (``jobs.spark.sources``) turn Cassandra history tables or raw Kafka topics into these
DataFrames; transforms take them and return typed report frames; ``jobs.spark.store`` flattens a
report frame into the generic report table (see docs/analytics.md).

Times are Spark ``timestamp`` (UTC instants). Ids are strings (Cassandra uuids are read as strings).
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


def _s(*fields: tuple[str, object]) -> StructType:
    return StructType([StructField(name, kind, True) for name, kind in fields])  # type: ignore[arg-type]


STR, TS, DBL, BOOL, LONG = StringType(), TimestampType(), DoubleType(), BooleanType(), LongType()

STATES = _s(
    ("machine_id", STR),
    ("line_id", STR),
    ("event_time", TS),
    ("event_id", STR),
    ("previous", STR),
    ("state", STR),
    ("reason", STR),
)
"""``factory.state`` / Cassandra ``machine_states``: one row per state change."""

PARTS = _s(
    ("machine_id", STR),
    ("line_id", STR),
    ("event_time", TS),
    ("event_id", STR),
    ("part_id", STR),
    ("product_family", STR),
    ("cycle_time_s", DBL),
    ("ideal_cycle_time_s", DBL),
    ("good", BOOL),
    ("scrap_reason", STR),
)
"""``factory.production`` / Cassandra ``parts``: one row per finished part (scrap included)."""

TELEMETRY = _s(
    ("machine_id", STR),
    ("line_id", STR),
    ("machine_type", STR),
    ("event_time", TS),
    ("event_id", STR),
    ("channel_values", MapType(STR, DBL)),
)
"""``factory.telemetry`` / Cassandra ``telemetry``: one row per reading, channels by name."""

ALARMS = _s(
    ("alarm_id", STR),
    ("machine_id", STR),
    ("line_id", STR),
    ("alarm_type", STR),
    ("rule_id", STR),
    ("severity", STR),
    ("status", STR),
    ("start_time", TS),
    ("end_time", TS),
    ("ack_time", TS),
    ("acked_by", STR),
    ("clear_time", TS),
    ("cleared_by", STR),
)
"""Cassandra ``alarms_by_machine``: the latest state of each alarm (one row per alarm)."""

ANOMALIES = _s(
    ("machine_id", STR),
    ("line_id", STR),
    ("event_time", TS),
    ("event_id", STR),
    ("detector", STR),
    ("score", DBL),
    ("threshold", DBL),
)
"""``twin.anomalies`` / Cassandra ``anomalies``."""

SOLVER_OUTCOME = _s(
    ("solver", STR),
    ("status", STR),
    ("objective", DBL),
    ("gap", DBL),
    ("solve_time_ms", LONG),
)

PLANS = _s(
    ("line_id", STR),
    ("event_time", TS),
    ("plan_id", STR),
    ("request_id", STR),
    ("solver", STR),
    ("status", STR),
    ("objective", DBL),
    ("bound", DBL),
    ("solve_time_ms", LONG),
    ("chosen_by", STR),
    ("comparison", ArrayType(SOLVER_OUTCOME)),
)
"""``twin.plans`` / Cassandra ``schedule_plans``: the plan the scheduler published (adopted) per
request, with every solver's outcome in ``comparison`` (empty on rows written before version 5)."""

REQUESTS = _s(
    ("line_id", STR),
    ("event_time", TS),
    ("request_id", STR),
    ("trigger", STR),
    ("trigger_machine_id", STR),
)
"""``schedule.requests`` / Cassandra ``schedule_requests``."""

PERIODS = _s(
    ("line_id", STR),
    ("period", STR),
    ("kind", STR),
    ("period_start", TS),
    ("period_end", TS),
)
"""The report periods (``jobs.spark.calendar``): ``kind`` is ``day`` or ``shift``; ``period`` is
``2026-12-08`` for a day and ``2026-12-08/A`` for a shift (named in the shift calendar), in the
calendar's time zone. Periods are per line (a line may run its own calendar)."""

SEGMENTS = _s(
    ("line_id", STR),
    ("period", STR),
    ("seg_start", TS),
    ("seg_end", TS),
)
"""The scheduled (staffed) stretches of each period: the shift minus the calendar's breaks and
planned downtime. Time outside them is "not scheduled" and never counts as planned time."""
