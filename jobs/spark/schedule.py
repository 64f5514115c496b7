"""The scheduler's record per line and report period: requests, published plans, solvers.

Inputs: ``PLANS``, ``REQUESTS`` and ``PERIODS`` (``jobs.spark.schema``). Report ``schedule``, key
columns ``line_id, period, period_start, period_end, scope, item``, scope ``line:<line_id>``. A
request or plan belongs to the period holding its ``event_time`` (a plan carries its request's
event time). Rows and their metrics (the other metric columns are null on that row):

- item ``""`` (every period): **requests** in the period; **plans** published (adopted by the line)
  in the period; **unanswered**: requests in the period without any plan (at any time) with their
  ``request_id``; **feasible**: plans whose status is OPTIMAL or FEASIBLE; **mean_solve_ms**: mean
  ``solve_time_ms`` of the plans; **mean_gap**: mean of each plan's chosen-solver gap, the ``gap``
  of the ``comparison`` entry whose ``solver`` is the plan's ``solver`` (plans without one, e.g.
  written before comparisons existed, are left out; null when no plan has one).
- item ``"solver:<name>"`` (each solver chosen in the period): **chosen** plans whose ``solver`` is
  it, **share** = chosen / plans (0-1), and **mean_solve_ms** / **mean_gap** over those plans.
- item ``"trigger:<trigger>"`` (each trigger seen in the period): **requests** with that trigger.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

KEYS = ("line_id", "period", "period_start", "period_end", "scope", "item")
PERIOD = ("line_id", "period", "period_start", "period_end")
METRICS = ("requests", "plans", "unanswered", "feasible", "chosen", "share", "mean_solve_ms", "mean_gap")
FEASIBLE = ("OPTIMAL", "FEASIBLE")
_TYPES = {"share": "double", "mean_solve_ms": "double", "mean_gap": "double"}


def _in(rows: DataFrame, periods: DataFrame) -> DataFrame:
    t = F.col("event_time")
    return rows.join(periods, "line_id").where((F.col("period_start") <= t) & (t < F.col("period_end")))


def chosen_gap(plans: DataFrame) -> DataFrame:
    """``plans`` plus ``gap``: the gap of the comparison entry of the plan's own solver (or null)."""
    own = F.filter(F.col("comparison"), lambda c: c["solver"] == F.col("solver"))
    return plans.withColumn("gap", F.get(own, 0)["gap"])


def _plan_means() -> list[Column]:
    return [
        F.round(F.avg("solve_time_ms"), 6).alias("mean_solve_ms"),
        F.round(F.avg("gap"), 6).alias("mean_gap"),
    ]


def _overall(plans: DataFrame, requests: DataFrame, periods: DataFrame) -> DataFrame:
    answered = plans.select("line_id", "request_id").where(F.col("request_id").isNotNull()).distinct()
    reqs = _in(requests, periods).join(
        answered.withColumn("answered", F.lit(True)), ["line_id", "request_id"], "left"
    )
    req_counts = reqs.groupBy("line_id", "period").agg(
        F.count("*").alias("requests"), F.count_if(F.col("answered").isNull()).alias("unanswered")
    )
    plan_stats = _in(chosen_gap(plans), periods).groupBy("line_id", "period")
    ok = F.col("status").isin(*FEASIBLE)
    plan_counts = plan_stats.agg(
        F.count("*").alias("plans"), F.count_if(ok).alias("feasible"), *_plan_means()
    )
    out = periods.join(req_counts, ["line_id", "period"], "left").join(
        plan_counts, ["line_id", "period"], "left"
    )
    return out.fillna(0, ["requests", "unanswered", "plans", "feasible"]).withColumn("item", F.lit(""))


def _solvers(plans: DataFrame, periods: DataFrame) -> DataFrame:
    rows = _in(chosen_gap(plans), periods).withColumn("solver", F.coalesce("solver", F.lit("")))
    out = rows.groupBy(*PERIOD, "solver").agg(F.count("*").alias("chosen"), *_plan_means())
    total = F.sum("chosen").over(Window.partitionBy("line_id", "period"))
    out = out.withColumn("share", F.round(F.col("chosen") / total, 6))
    return out.withColumn("item", F.concat(F.lit("solver:"), "solver"))


def _triggers(requests: DataFrame, periods: DataFrame) -> DataFrame:
    rows = _in(requests, periods).withColumn("trigger", F.coalesce("trigger", F.lit("")))
    out = rows.groupBy(*PERIOD, "trigger").agg(F.count("*").alias("requests"))
    return out.withColumn("item", F.concat(F.lit("trigger:"), "trigger"))


def schedule_record(plans: DataFrame, requests: DataFrame, periods: DataFrame) -> DataFrame:
    """Report ``schedule``: per line and period, the overall row, one row per solver chosen and one
    per request trigger."""
    parts = [_overall(plans, requests, periods), _solvers(plans, periods), _triggers(requests, periods)]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part, allowMissingColumns=True)
    out = out.withColumn("scope", F.concat(F.lit("line:"), "line_id"))
    return out.select(*KEYS, *[F.col(m).cast(_TYPES.get(m, "long")).alias(m) for m in METRICS])
