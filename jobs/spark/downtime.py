"""Where the stops went and how reliable each machine is (docs/analytics.md#downtime-and-reliability).

- **downtime** (a Pareto): unplanned-stop time per machine and cause (``STATE:reason``) in each
  period's scheduled time, ranked across the line, with each cause's share and the cumulative share.
  ``stops`` counts the stop intervals that overlap the period.
- **reliability**: per machine, ``failures`` (failures that *began* in the period: a DOWN that only
  changes its reason continues the same failure, maintenance is not one), ``repairs`` and
  ``repair_s`` (failures that *ended* in the period, with their whole duration, even if they began
  earlier), MTBF = run time / failures, MTTR = repair time / repairs, availability = run / planned:
  the streaming KPIs' definitions (docs/kpis.md) over the period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.spark.intervals import FAR_US, clip_to_segments, state_intervals
from jobs.spark.oee import KEYS, US, horizon_us, machine_figures
from twin.oee import KpiConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def downtime_pareto(
    states: DataFrame, periods: DataFrame, segments: DataFrame, config: KpiConfig | None = None
) -> DataFrame:
    """Report "downtime": scope ``machine:<id>``, item ``STATE:reason``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    clipped = clip_to_segments(state_intervals(states, config), segments, horizon_us(segments))
    stops = clipped.where(F.col("kind") == "unplanned_stop")
    per = stops.groupBy("line_id", "period", "machine_id", "state", "reason").agg(
        F.countDistinct("start_us").alias("stops"), F.sum("us").alias("_us")
    )
    line = Window.partitionBy("line_id", "period")
    ranked = line.orderBy(F.col("_us").desc(), "machine_id", "state", "reason")
    per = per.withColumn("rank", F.row_number().over(ranked))
    per = per.withColumn("_total", F.sum("_us").over(line))
    per = per.withColumn("_cum", F.sum("_us").over(ranked.rowsBetween(Window.unboundedPreceding, 0)))
    out = per.join(
        periods.select("line_id", "period", "period_start", "period_end", "kind"), ["line_id", "period"]
    )
    return out.select(
        *KEYS[:4],
        F.concat(F.lit("machine:"), "machine_id").alias("scope"),
        F.concat_ws(":", "state", "reason").alias("item"),
        "kind",
        "state",
        "reason",
        F.col("stops").cast("long").alias("stops"),
        (F.col("_us") / US).alias("downtime_s"),
        F.round(F.col("_us") / F.col("_total"), 9).alias("share"),
        F.round(F.col("_cum") / F.col("_total"), 9).alias("cumulative_share"),
        F.col("rank").cast("long").alias("rank"),
    )


def failures(states: DataFrame, config: KpiConfig | None = None) -> DataFrame:
    """One row per failure: machine_id, line_id, ``begin_us``, ``end_us`` (null while it lasts)."""
    from pyspark.sql import functions as F

    iv = state_intervals(states, config).where(F.col("failure"))
    out = iv.groupBy("machine_id", "line_id", F.col("failure_start_us").alias("begin_us")).agg(
        F.max("end_us").alias("end_us")
    )
    return out.withColumn("end_us", F.when(F.col("end_us") < FAR_US, F.col("end_us")))


def reliability(
    states: DataFrame,
    parts: DataFrame,
    periods: DataFrame,
    segments: DataFrame,
    config: KpiConfig | None = None,
) -> DataFrame:
    """Report "reliability": scope ``machine:<id>``."""
    from pyspark.sql import functions as F

    from jobs.spark.intervals import STOP_CATEGORIES

    base = machine_figures(states, parts, periods, segments, config)
    planned = F.col("scheduled_us") - F.col("planned_stop_us") - F.col("unknown_us")
    run = planned - sum((F.col(f"{c}_us") for c in STOP_CATEGORIES), F.lit(0))
    base = base.select("line_id", "period", "machine_id", planned.alias("planned_us"), run.alias("run_us"))
    per = periods.select(
        "line_id",
        "period",
        "period_start",
        "period_end",
        "kind",
        F.unix_micros("period_start").alias("p0"),
        F.unix_micros("period_end").alias("p1"),
    )
    fails = failures(states, config)
    joined = F.broadcast(per).join(fails, "line_id")
    began = F.when((F.col("begin_us") >= F.col("p0")) & (F.col("begin_us") < F.col("p1")), 1).otherwise(0)
    ended = F.col("end_us").isNotNull() & (F.col("end_us") >= F.col("p0")) & (F.col("end_us") < F.col("p1"))
    counts = joined.groupBy("line_id", "period", "machine_id").agg(
        F.sum(began).cast("long").alias("failures"),
        F.sum(F.when(ended, 1).otherwise(0)).cast("long").alias("repairs"),
        F.sum(F.when(ended, F.col("end_us") - F.col("begin_us")).otherwise(0)).alias("repair_us"),
    )
    df = base.join(per, ["line_id", "period"]).join(counts, ["line_id", "period", "machine_id"], "left")
    df = df.fillna(0, subset=["failures", "repairs", "repair_us"])
    return df.select(
        *KEYS[:4],
        F.concat(F.lit("machine:"), "machine_id").alias("scope"),
        F.lit("").alias("item"),
        "kind",
        "failures",
        "repairs",
        (F.col("run_us") / US).alias("run_s"),
        (F.col("planned_us") / US).alias("planned_s"),
        (F.col("repair_us") / US).alias("repair_s"),
        F.when(F.col("failures") > 0, F.round(F.col("run_us") / US / F.col("failures"), 6)).alias("mtbf_s"),
        F.when(F.col("repairs") > 0, F.round(F.col("repair_us") / US / F.col("repairs"), 6)).alias("mttr_s"),
        F.round(
            F.when(F.col("planned_us") > 0, F.col("run_us") / F.col("planned_us")).otherwise(0.0), 9
        ).alias("availability"),
    )
