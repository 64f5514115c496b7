"""Cycle times and scrap per machine and product family (docs/analytics.md#cycle-times).

Per period, machine and product family (item = the family; ``all`` = every part of the machine):
parts, good, scrap, scrap rate, and the distribution of ``cycle_time_s`` (exact percentiles, not
approximate, so reruns agree to the bit) with the mean ideal cycle time beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.spark.oee import KEYS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

PERCENTILES = {"p05_s": 0.05, "p25_s": 0.25, "p50_s": 0.5, "p75_s": 0.75, "p95_s": 0.95}


def cycle_time(parts: DataFrame, periods: DataFrame) -> DataFrame:
    """Report "cycle_time": scope ``machine:<id>``, item the product family or ``all``."""
    from pyspark.sql import functions as F

    per = periods.select("line_id", "period", "period_start", "period_end", "kind")
    p = parts.join(F.broadcast(per), "line_id").where(
        (F.col("event_time") >= F.col("period_start")) & (F.col("event_time") < F.col("period_end"))
    )
    family = F.col("product_family")
    items = F.when(family.isNull() | (family == ""), F.array(F.lit("all"))).otherwise(
        F.array(F.lit("all"), family)
    )
    fams = p.withColumn("item", F.explode(items))
    c = F.col("cycle_time_s")
    stats = fams.groupBy(*KEYS[:4], "kind", "machine_id", "item").agg(
        F.count(F.lit(1)).alias("parts"),
        F.sum(F.when(F.col("good"), 1).otherwise(0)).cast("long").alias("good"),
        F.round(F.avg(c), 6).alias("mean_s"),
        F.min(c).alias("min_s"),
        *[F.round(F.percentile(c, q), 6).alias(name) for name, q in PERCENTILES.items()],
        F.max(c).alias("max_s"),
        F.round(F.avg("ideal_cycle_time_s"), 6).alias("ideal_s"),
    )
    # A machine making one family gets that row and "all" with the same figures: a reader filters.
    return stats.select(
        *KEYS[:4],
        F.concat(F.lit("machine:"), "machine_id").alias("scope"),
        "item",
        "kind",
        "parts",
        "good",
        (F.col("parts") - F.col("good")).alias("scrap"),
        F.round((F.col("parts") - F.col("good")) / F.col("parts"), 9).alias("scrap_rate"),
        "mean_s",
        "min_s",
        *PERCENTILES,
        "max_s",
        "ideal_s",
    )
