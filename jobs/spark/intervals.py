"""Machine time as intervals: each state change holds until the machine's next one, classified by
the streaming KPIs' time model (``processors.kpi.KpiConfig``, docs/kpis.md) and cut to the scheduled
segments of each report period.

Times are whole microseconds (``unix_micros``) so sums are exact and reruns byte-identical. Intervals
are joined to segments by UTC day bucket (an equi-join on a small broadcast table), not by a range
condition, which would compare every interval with every segment.

Categories (where the time goes in the loss tree, docs/analytics.md):

- planned stop: ``planned_stop``; unplanned stops: ``breakdown`` (a failure: DOWN for a failure
  reason), ``maintenance`` (DOWN for a non-failure reason), ``setup`` (SETUP), ``idle`` (IDLE),
  ``other_stop`` (another unplanned-stop state);
- run time: ``starved`` (STARVED), ``blocked`` (BLOCKED), ``running`` (any other state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.oee import KpiConfig

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

DAY_US = 86_400_000_000
FAR_US = 253_402_300_799_000_000  # 9999-12-31: the last change holds until the end of the range

STOP_CATEGORIES = ("breakdown", "maintenance", "setup", "idle", "other_stop")
RUN_CATEGORIES = ("starved", "blocked", "running")


def _in(column: str, values: frozenset[str]) -> Column:
    from pyspark.sql import functions as F

    return F.col(column).isin(sorted(values)) if values else F.lit(False)


def classify(config: KpiConfig) -> tuple[Column, Column, Column]:
    """Columns (kind, failure, category) of a row with ``state`` and ``reason``, as ``config`` says."""
    from pyspark.sql import functions as F

    reason = F.coalesce(F.col("reason"), F.lit(""))
    planned = reason.isin(sorted(config.planned_stop_reasons)) | _in("state", config.planned_stop_states)
    unplanned = _in("state", config.unplanned_stop_states)
    failure = (
        ~planned
        & unplanned
        & _in("state", config.failure_states)
        & ~reason.isin(sorted(config.non_failure_reasons) or [""])
    )
    if not config.non_failure_reasons:
        failure = ~planned & unplanned & _in("state", config.failure_states)
    kind = F.when(planned, "planned_stop").when(unplanned, "unplanned_stop").otherwise("run")
    category = (
        F.when(planned, "planned_stop")
        .when(failure, "breakdown")
        .when(unplanned & _in("state", config.failure_states), "maintenance")
        .when(unplanned & (F.col("state") == "SETUP"), "setup")
        .when(unplanned & (F.col("state") == "IDLE"), "idle")
        .when(unplanned, "other_stop")
        .when(F.col("state") == "STARVED", "starved")
        .when(F.col("state") == "BLOCKED", "blocked")
        .otherwise("running")
    )
    return kind, failure, category


def state_intervals(states: DataFrame, config: KpiConfig | None = None) -> DataFrame:
    """One row per state change: machine_id, line_id, state, reason, kind, failure, category,
    ``start_us``, ``end_us`` (the machine's next change; ``FAR_US`` for the last), ``failure_start_us``
    (when the failure this interval belongs to began: a DOWN that only changes its reason continues
    the failure, as in the streaming KPIs; null outside failures).

    Changes at the same microsecond are ordered so that one whose ``previous`` is another's ``state``
    comes after it (X->A before A->B), then by state, reason and id, so arrival order never decides.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    config = config or KpiConfig()
    kind, failure, category = classify(config)
    s = states.select(
        "machine_id",
        "line_id",
        "state",
        "reason",
        "previous",
        "event_id",
        F.unix_micros("event_time").alias("t"),
    )
    # Every window below partitions by machine alone: one shuffle of the changes, then sorts.
    machine = Window.partitionBy("machine_id")
    same = machine.orderBy("t").rangeBetween(0, 0)  # the changes at the same microsecond
    s = s.withColumn("_states", F.collect_set("state").over(same)).withColumn(
        "_after",
        F.when(F.array_contains("_states", F.coalesce(F.col("previous"), F.lit(""))), 1).otherwise(0),
    )
    order = machine.orderBy("t", "_after", "state", "reason", "event_id")
    s = s.withColumn("end_us", F.coalesce(F.lead("t").over(order), F.lit(FAR_US)))
    s = s.withColumn("kind", kind).withColumn("failure", failure).withColumn("category", category)
    # A failure starts where the previous interval was not a failure; it lasts while failures follow:
    # its start is the latest failure start up to here.
    s = s.withColumn("_begins", F.col("failure") & ~F.coalesce(F.lag("failure").over(order), F.lit(False)))
    upto = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    s = s.withColumn(
        "failure_start_us",
        F.when(F.col("failure"), F.last(F.when(F.col("_begins"), F.col("t")), ignorenulls=True).over(upto)),
    )
    return s.select(
        "machine_id",
        "line_id",
        "state",
        F.coalesce(F.col("reason"), F.lit("")).alias("reason"),
        "kind",
        "failure",
        "category",
        F.col("t").alias("start_us"),
        "end_us",
        "failure_start_us",
    )


def day_buckets(start: Column, end: Column) -> Column:
    """The UTC day numbers [start, end) touches (at least one), to join on."""
    from pyspark.sql import functions as F

    first = F.floor(start / DAY_US)
    last = F.floor((F.greatest(end, start + 1) - 1) / DAY_US)
    return F.sequence(first.cast("long"), last.cast("long"))


def segment_days(segments: DataFrame) -> DataFrame:
    """SEGMENTS as microseconds, one row per UTC day each touches (``day_us`` to join on)."""
    from pyspark.sql import functions as F

    seg = segments.select(
        "line_id",
        "period",
        F.unix_micros("seg_start").alias("seg_start_us"),
        F.unix_micros("seg_end").alias("seg_end_us"),
    )
    return seg.withColumn("day_us", F.explode(day_buckets(F.col("seg_start_us"), F.col("seg_end_us"))))


def clip_to_segments(intervals: DataFrame, segments: DataFrame, horizon_us: int) -> DataFrame:
    """``intervals`` cut to each period's scheduled segments: line_id, period, machine_id, interval
    columns, and ``us`` (the overlap, > 0). Open intervals end at ``horizon_us`` (the range's end)."""
    from pyspark.sql import functions as F

    iv = intervals.withColumn("end_us", F.least(F.col("end_us"), F.lit(horizon_us)))
    iv = iv.where(F.col("end_us") > F.col("start_us"))
    iv = iv.withColumn("day_us", F.explode(day_buckets(F.col("start_us"), F.col("end_us"))))
    seg = F.broadcast(segment_days(segments))
    joined = iv.join(seg, ["line_id", "day_us"])
    a = F.greatest("start_us", "seg_start_us")
    b = F.least("end_us", "seg_end_us")
    # A segment touching two days meets an interval touching both twice: count each pair once, in
    # the first day both touch.
    first_common = F.greatest(F.floor(F.col("start_us") / DAY_US), F.floor(F.col("seg_start_us") / DAY_US))
    out = joined.where((b > a) & (F.col("day_us") == first_common))
    return out.withColumn("us", b - a).drop("day_us")
