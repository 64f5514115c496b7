"""OEE per machine and line per period, with its loss tree (docs/analytics.md#oee).

The definitions are the streaming KPIs' (docs/kpis.md), over a report period instead of a window, so
a day's OEE equals the one recounted from that day's hourly ``kpi_windows`` (summed time and counts):

- planned = scheduled - planned stops - unknown (before the machine's first known state);
- run = planned - unplanned stops (breakdown, maintenance, setup, idle, other);
- net productive = min(run, Σ ideal cycle time of the parts): performance = net / run (clamped to 1);
- fully productive = net x good / total: OEE = fully productive / planned = A x P x Q.

The loss tree splits each gap: availability losses by category (``jobs.spark.intervals``);
performance loss = run - net, of which starvation and blocking (run time the machine spent held up by
its neighbours, up to the loss) and the rest speed loss; quality loss = net - fully productive.
Every ``*_s`` figure is in seconds and the tree adds up exactly:
planned - stops = run; run - starved - blocked - speed = net; net - quality = fully productive.

A line is measured at its constraint (the machine with the longest ideal cycle time in the period;
ties go upstream in the layout), whose time it takes; with a layout, its output is what leaves the
last station and scrap anywhere on the line is its quality loss, as in ``processors.kpi.line``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from jobs.spark.intervals import (
    RUN_CATEGORIES,
    STOP_CATEGORIES,
    clip_to_segments,
    day_buckets,
    state_intervals,
)
from twin.oee import KpiConfig

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

KEYS = ["line_id", "period", "period_start", "period_end", "scope", "item"]
CATEGORIES = ("planned_stop", *STOP_CATEGORIES, *RUN_CATEGORIES)
US = 1_000_000.0


def horizon_us(segments: DataFrame) -> int:
    """The end of the last segment (open intervals end there), in microseconds."""
    from pyspark.sql import functions as F

    row = segments.agg(F.max(F.unix_micros("seg_end")).alias("h")).first()
    return int(row["h"]) if row is not None and row["h"] is not None else 0


def part_counts(parts: DataFrame, periods: DataFrame) -> DataFrame:
    """Per (line_id, period, machine_id): total, good, ``ideal_us`` (Σ ideal cycle time, whole µs)."""
    from pyspark.sql import functions as F

    p = parts.select(
        "line_id",
        "machine_id",
        "good",
        F.unix_micros("event_time").alias("t"),
        F.round(F.col("ideal_cycle_time_s") * US).cast("long").alias("ideal_us"),
    )
    p = p.withColumn("day_us", F.floor(F.col("t") / 86_400_000_000))
    per = periods.select(
        "line_id",
        "period",
        F.unix_micros("period_start").alias("p0"),
        F.unix_micros("period_end").alias("p1"),
    ).withColumn("day_us", F.explode(day_buckets(F.col("p0"), F.col("p1"))))
    joined = p.join(F.broadcast(per), ["line_id", "day_us"]).where(
        (F.col("t") >= F.col("p0")) & (F.col("t") < F.col("p1"))
    )
    return joined.groupBy("line_id", "period", "machine_id").agg(
        F.count(F.lit(1)).alias("total_count"),
        F.sum(F.when(F.col("good"), 1).otherwise(0)).cast("long").alias("good_count"),
        F.sum("ideal_us").alias("ideal_us"),
    )


def machine_time(states: DataFrame, segments: DataFrame, config: KpiConfig | None = None) -> DataFrame:
    """Per (line_id, period, machine_id): µs per category (``<category>_us``) and ``covered_us``."""
    from pyspark.sql import functions as F

    clipped = clip_to_segments(state_intervals(states, config), segments, horizon_us(segments))
    sums = [
        F.sum(F.when(F.col("category") == c, F.col("us")).otherwise(0)).alias(f"{c}_us") for c in CATEGORIES
    ]
    return clipped.groupBy("line_id", "period", "machine_id").agg(*sums, F.sum("us").alias("covered_us"))


def _ratio(num: Column, den: Column, otherwise: float) -> Column:
    from pyspark.sql import functions as F

    return F.when(den > 0, num / den).otherwise(F.lit(otherwise))


def _figures(df: DataFrame) -> DataFrame:
    """From µs buckets and counts to the loss tree and ratios (seconds, rounded to the µs)."""
    from pyspark.sql import functions as F

    stops = sum((F.col(f"{c}_us") for c in STOP_CATEGORIES), F.lit(0))
    df = df.withColumn("planned_us", F.col("scheduled_us") - F.col("planned_stop_us") - F.col("unknown_us"))
    df = df.withColumn("run_us", F.col("planned_us") - stops)
    df = df.withColumn("net_us", F.greatest(F.lit(0), F.least(F.col("run_us"), F.col("ideal_us"))))
    perf_loss = F.col("run_us") - F.col("net_us")
    df = df.withColumn("starved_loss_us", F.least(F.col("starved_us"), perf_loss))
    df = df.withColumn("blocked_loss_us", F.least(F.col("blocked_us"), perf_loss - F.col("starved_loss_us")))
    df = df.withColumn("speed_us", perf_loss - F.col("starved_loss_us") - F.col("blocked_loss_us"))
    quality = _ratio(F.col("good_count").cast("double"), F.col("total_count").cast("double"), 1.0)
    df = df.withColumn("quality", quality)
    df = df.withColumn("fully_us", F.col("net_us") * F.col("quality"))
    sec = {
        "calendar_s": F.col("calendar_us") / US,
        "not_scheduled_s": (F.col("calendar_us") - F.col("scheduled_us")) / US,
        "planned_stop_s": F.col("planned_stop_us") / US,
        "unknown_s": F.col("unknown_us") / US,
        "planned_s": F.col("planned_us") / US,
        **{f"{c}_s": F.col(f"{c}_us") / US for c in STOP_CATEGORIES},
        "run_s": F.col("run_us") / US,
        "starved_s": F.col("starved_loss_us") / US,
        "blocked_s": F.col("blocked_loss_us") / US,
        "speed_loss_s": F.col("speed_us") / US,
        "net_productive_s": F.col("net_us") / US,
        "quality_loss_s": F.round((F.col("net_us") - F.col("fully_us")) / US, 6),
        "fully_productive_s": F.round(F.col("fully_us") / US, 6),
        "total_count": F.col("total_count"),
        "good_count": F.col("good_count"),
        "ideal_cycle_time_s": F.round(
            _ratio(F.col("ideal_us") / US, F.col("total_count").cast("double"), 0.0), 6
        ),
        "availability": F.round(
            _ratio(F.col("run_us").cast("double"), F.col("planned_us").cast("double"), 0.0), 9
        ),
        "performance": F.round(
            _ratio(F.col("net_us").cast("double"), F.col("run_us").cast("double"), 0.0), 9
        ),
        "quality": F.round(F.col("quality"), 9),
        "oee": F.round(_ratio(F.col("fully_us"), F.col("planned_us").cast("double"), 0.0), 9),
    }
    return df.select(*KEYS, "kind", "machine_id", *[c.alias(n) for n, c in sec.items()])


def machine_figures(
    states: DataFrame,
    parts: DataFrame,
    periods: DataFrame,
    segments: DataFrame,
    config: KpiConfig | None = None,
) -> DataFrame:
    """The raw per-machine buckets (µs) and counts of every period: the base of OEE and reliability."""
    from pyspark.sql import functions as F

    time = machine_time(states, segments, config)
    counts = part_counts(parts, periods)
    # Every machine with time or parts in a period (one read of each side: a full outer join).
    machines = time.join(counts, ["line_id", "period", "machine_id"], "full_outer")
    scheduled = segments.groupBy("line_id", "period").agg(
        F.sum(F.unix_micros("seg_end") - F.unix_micros("seg_start")).alias("scheduled_us")
    )
    per = periods.select(
        "line_id",
        "period",
        "period_start",
        "period_end",
        "kind",
        (F.unix_micros("period_end") - F.unix_micros("period_start")).alias("calendar_us"),
    )
    df = machines.join(F.broadcast(per), ["line_id", "period"]).join(
        F.broadcast(scheduled), ["line_id", "period"], "left"
    )
    zero = [
        "scheduled_us",
        "covered_us",
        *[f"{c}_us" for c in CATEGORIES],
        "total_count",
        "good_count",
        "ideal_us",
    ]
    df = df.fillna(0, subset=zero)
    return df.withColumn("unknown_us", F.col("scheduled_us") - F.col("covered_us"))


def oee(
    states: DataFrame,
    parts: DataFrame,
    periods: DataFrame,
    segments: DataFrame,
    config: KpiConfig | None = None,
    layout: Mapping[str, Sequence[str]] | None = None,
) -> DataFrame:
    """Report "oee": one row per machine (scope ``machine:<id>``) and line (``line:<id>``) and period."""
    from pyspark.sql import functions as F

    base = machine_figures(states, parts, periods, segments, config).cache()
    machines = _figures(
        base.withColumn("scope", F.concat(F.lit("machine:"), "machine_id")).withColumn("item", F.lit(""))
    )
    lines = _figures(_line_base(base, layout or {}))
    keep = [c for c in machines.columns if c != "machine_id"]
    return machines.select(*keep).unionByName(lines.select(*keep))


def _line_base(base: DataFrame, layout: Mapping[str, Sequence[str]]) -> DataFrame:
    """The constraint's buckets per line and period, with the line's counts (see the module doc)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    # Each machine's mean ideal cycle time over the whole range stands in for a period without parts
    # (from the day periods' sums, which do not overlap: no second scan of the parts).
    days = base.where(F.col("kind") == "day").groupBy("line_id", "machine_id")
    overall = days.agg((F.sum("ideal_us") / US / F.sum("total_count")).alias("_ideal_all"))
    position = (
        F.create_map(
            *[
                x
                for line, ms in layout.items()
                for i, m in enumerate(ms)
                for x in (F.lit(f"{line}/{m}"), F.lit(i))
            ]
        )
        if layout
        else None
    )
    pos = (
        F.coalesce(position[F.concat_ws("/", "line_id", "machine_id")], F.lit(1_000_000))
        if position is not None
        else F.lit(0)
    )
    df = base.join(overall, ["line_id", "machine_id"], "left").withColumn(
        "_ideal",
        F.when(F.col("total_count") > 0, F.col("ideal_us") / US / F.col("total_count")).otherwise(
            F.coalesce(F.col("_ideal_all"), F.lit(0.0))
        ),
    )
    df = df.withColumn("_pos", pos)
    by_period = Window.partitionBy("line_id", "period")
    ranked = df.withColumn(
        "_rank", F.row_number().over(by_period.orderBy(F.col("_ideal").desc(), "_pos", "machine_id"))
    )
    exit_ids = {line: ms[-1] for line, ms in layout.items() if ms}
    exit_map = (
        F.create_map(*[x for k, v in exit_ids.items() for x in (F.lit(k), F.lit(v))]) if exit_ids else None
    )
    is_exit = (F.col("machine_id") == exit_map[F.col("line_id")]) if exit_map is not None else F.lit(False)
    flows = ranked.groupBy("line_id", "period").agg(
        F.max(F.when(is_exit, 1).otherwise(0)).alias("_has_exit"),
        F.sum(F.when(is_exit, F.col("good_count")).otherwise(0)).alias("_exit_good"),
        F.sum(F.col("total_count") - F.col("good_count")).alias("_scrap"),
    )
    line = ranked.where(F.col("_rank") == 1).join(flows, ["line_id", "period"])
    with_exit = F.col("_has_exit") == 1
    good = F.when(with_exit, F.col("_exit_good")).otherwise(F.col("good_count"))
    total = F.when(with_exit, F.col("_exit_good") + F.col("_scrap")).otherwise(F.col("total_count"))
    line = line.withColumn("good_count", good.cast("long")).withColumn("total_count", total.cast("long"))
    line = line.withColumn("ideal_us", F.round(F.col("_ideal") * US * F.col("total_count")).cast("long"))
    return line.withColumn("scope", F.concat(F.lit("line:"), "line_id")).withColumn("item", F.lit(""))
