"""Alarm-management reports (ISA-18.2 / EEMUA 191) and anomaly counts, per line and report period.

Inputs: ``ALARMS`` (the latest state of each alarm, one row per alarm), ``ANOMALIES`` and ``PERIODS``
(``jobs.spark.schema``). Every report has the key columns ``line_id, period, period_start,
period_end, scope, item``; an event belongs to a period when ``period_start <= t < period_end``.

Definitions (an alarm is *raised* at its ``start_time``; alarms without one are ignored):

- **raised**: alarms whose ``start_time`` is in the period. **acked** / **cleared**: of those, the
  ones with an ``ack_time`` / ``clear_time`` (whenever it happened: the row is the alarm's latest
  state). ``ack_*_s`` = ``ack_time - start_time`` and ``clear_mean_s`` = ``clear_time - start_time``
  in seconds, over the raised alarms that have one (null when none); percentiles are exact
  (``percentile``, linear interpolation).
- **severity** is the alarm's latest severity (after any escalation).
- **standing** (ISA-18.2 "stale"): alarms of the line/machine raised before ``period_end`` that are
  still active at ``period_end`` (no ``clear_time``, or ``clear_time > period_end``) and have been
  active for more than 24 h then (``period_end - start_time > 24 h``). They count in every period
  they stand in, whichever period raised them.
- **chattering**: the number of alarms raised in the period that belong to a burst: at least
  :data:`CHATTER_RAISES` (3) raises of the same machine and ``alarm_type`` whose first and last
  ``start_time`` are at most :data:`CHATTER_WINDOW_S` (60 s) apart. Bursts are found over all the
  alarms given, so a raise at the start of a period counts when its burst began in the previous one.
  Every alarm of a burst counts once (a burst of 4 raises adds 4), whatever its severity.
- **10-minute intervals** are aligned to ``period_start``; the last one is shorter when the period is
  not a whole number of 10 minutes (it still counts as an interval). Intervals without alarms count
  as 0. An interval is *acceptable* with ``<= 1`` alarm per operator, *manageable* with ``<= 2``, a
  *flood* with ``> 10`` (ISA-18.2). ``share_*`` are fractions (0-1) of the period's intervals;
  ``per_10min_mean`` / ``per_10min_peak`` are alarms per interval for the whole line (not per
  operator); ``top10_share`` is a fraction (0-1): the raised alarms of the 10 most frequent
  (machine, alarm_type) pairs over all raised alarms (null without alarms). ``alarm_rate`` has one
  row per interval, item = its start as ISO-8601 UTC text (``2026-12-08T10:20:00Z``), ``raised`` and
  ``per_operator`` = raised / operators.
- **anomalies**: per machine and detector (item), the anomalies whose ``event_time`` is in the period
  (``count``) and their mean ``score`` (null when none has a score).
"""

from __future__ import annotations

import operator
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

KEYS = ("line_id", "period", "period_start", "period_end", "scope", "item")
PERIOD = ("line_id", "period", "period_start", "period_end")

# ANSI/ISA-18.2 alarm-performance targets (the figures EEMUA 191 also uses), per operator:
ACCEPTABLE_PER_10MIN = 1  # ~1 alarm per 10 min: "very likely acceptable"
MANAGEABLE_PER_10MIN = 2  # ~2 alarms per 10 min: "maximum manageable"
FLOOD_PER_10MIN = 10  # more than 10 alarms in 10 min: an alarm flood
FLOOD_TIME_SHARE_MAX = 0.01  # target: under 1 % of the time in flood
TOP10_SHARE_MAX = 0.05  # target: the 10 most frequent alarms make under 1-5 % of the load (we use 5 %)
STALE_MAX = 0  # target: no stale (standing) alarms
CHATTERING_MAX = 0  # target: no chattering alarms
STALE_AFTER_S = 24 * 3600  # ISA-18.2: an alarm active for more than 24 h is stale
CHATTER_RAISES = 3  # EEMUA 191 / ISA-18.2 rule of thumb: 3 or more raises ...
CHATTER_WINDOW_S = 60  # ... within 60 s is chattering
INTERVAL_S = 600
TOP_N = 10  # "top 10 alarms"

_US = 1_000_000


def _us(t: str) -> Column:
    return F.unix_micros(F.col(t))


def _in_period(t: str) -> Column:
    return (F.col("period_start") <= F.col(t)) & (F.col(t) < F.col("period_end"))


def _iso(ts: Column) -> Column:
    """ISO-8601 UTC text (``2026-12-08T10:20:00Z``) whatever the session time zone."""
    return F.date_format(F.to_utc_timestamp(ts, F.current_timezone()), "yyyy-MM-dd'T'HH:mm:ss'Z'")


def _secs(col: Column) -> Column:
    return F.round(col / _US, 6)


def _keyed(df: DataFrame, scope: Column, item: Column) -> DataFrame:
    return df.withColumn("scope", scope).withColumn("item", item)


def with_chattering(alarms: DataFrame) -> DataFrame:
    """``alarms`` plus a boolean ``chattering``: the alarm is one of >= 3 raises of its machine and
    alarm_type within 60 s. Any such burst holds 3 consecutive raises that include the alarm, so
    it is enough to look at the three triples of consecutive raises around it."""
    w = Window.partitionBy("line_id", "machine_id", "alarm_type").orderBy("start_time", "alarm_id")
    t = _us("start_time")
    k = CHATTER_RAISES - 1
    near = {o: F.lead(t, o).over(w) if o else t for o in range(-k, k + 1)}
    burst = [near[o + k] - near[o] <= CHATTER_WINDOW_S * _US for o in range(-k, 1)]
    flag = F.coalesce(reduce(operator.or_, burst), F.lit(False))
    return alarms.where(F.col("start_time").isNotNull()).withColumn("chattering", flag)


def raised_in(alarms: DataFrame, periods: DataFrame) -> DataFrame:
    """The alarms raised in each period (with the period's columns and ``chattering``)."""
    return with_chattering(alarms).join(periods, "line_id").where(_in_period("start_time"))


def standing_in(alarms: DataFrame, periods: DataFrame) -> DataFrame:
    """The alarms standing (stale) at each period's end."""
    end = F.col("period_end")
    active = F.col("clear_time").isNull() | (F.col("clear_time") > end)
    old = F.unix_micros(end) - _us("start_time") > STALE_AFTER_S * _US
    return alarms.where(F.col("start_time").isNotNull()).join(periods, "line_id").where(active & old)


def alarm_stats(alarms: DataFrame, periods: DataFrame) -> DataFrame:
    """Report ``alarms``: per machine and ``<alarm_type>:<severity>``, the rows with an alarm raised
    in the period or standing at its end."""
    raised = raised_in(alarms, periods).withColumn("_row", F.lit("raised"))
    standing = standing_in(alarms, periods).withColumn("_row", F.lit("standing"))
    rows = raised.unionByName(standing.withColumn("chattering", F.lit(False)))
    is_raised = F.col("_row") == "raised"
    ack_us = F.when(is_raised, _us("ack_time") - _us("start_time"))
    clear_us = F.when(is_raised, _us("clear_time") - _us("start_time"))
    out = rows.groupBy(*PERIOD, "machine_id", "alarm_type", "severity").agg(
        F.count_if(is_raised).alias("raised"),
        F.count_if(is_raised & F.col("ack_time").isNotNull()).alias("acked"),
        F.count_if(is_raised & F.col("clear_time").isNotNull()).alias("cleared"),
        _secs(F.avg(ack_us)).alias("ack_mean_s"),
        _secs(F.percentile(ack_us, 0.5)).alias("ack_p50_s"),
        _secs(F.percentile(ack_us, 0.9)).alias("ack_p90_s"),
        _secs(F.avg(clear_us)).alias("clear_mean_s"),
        F.count_if(~is_raised).alias("standing"),
        F.count_if(is_raised & F.col("chattering")).alias("chattering"),
    )
    item = F.concat_ws(":", F.coalesce("alarm_type", F.lit("")), F.coalesce("severity", F.lit("")))
    out = _keyed(out, F.concat(F.lit("machine:"), "machine_id"), item)
    metrics = ["raised", "acked", "cleared", "ack_mean_s", "ack_p50_s", "ack_p90_s", "clear_mean_s"]
    return out.select(*KEYS, *metrics, "standing", "chattering", "alarm_type", "severity")


def intervals(periods: DataFrame) -> DataFrame:
    """One row per 10-minute interval of each period: ``idx`` (0, 1, ...) and ``interval_start``."""
    step = INTERVAL_S * _US
    n = F.ceil((_us("period_end") - _us("period_start")) / step)
    idx = F.explode(F.when(n > 0, F.sequence(F.lit(0).cast("long"), n - 1)))
    out = periods.select("line_id", "period", "period_start", "period_end", idx.alias("idx"))
    return out.withColumn("interval_start", F.timestamp_micros(_us("period_start") + F.col("idx") * step))


def _interval_counts(alarms: DataFrame, periods: DataFrame) -> DataFrame:
    """Raised alarms per 10-minute interval, zeros included."""
    raised = raised_in(alarms, periods)
    idx = F.floor((_us("start_time") - _us("period_start")) / (INTERVAL_S * _US))
    counts = raised.groupBy("line_id", "period", idx.alias("idx")).agg(F.count("*").alias("raised"))
    out = intervals(periods).join(counts, ["line_id", "period", "idx"], "left")
    return out.withColumn("raised", F.coalesce("raised", F.lit(0).cast("long")))


def _check(operators: int) -> None:
    if operators < 1:
        msg = f"operators must be >= 1, got {operators}"
        raise ValueError(msg)


def alarm_rate(alarms: DataFrame, periods: DataFrame, operators: int = 1) -> DataFrame:
    """Report ``alarm_rate``: per line, one row per 10-minute interval (item = its start, ISO-8601
    UTC), ``raised`` in it and ``per_operator`` = raised / operators."""
    _check(operators)
    out = _interval_counts(alarms, periods)
    out = _keyed(out, F.concat(F.lit("line:"), "line_id"), _iso(F.col("interval_start")))
    per_operator = F.round(F.col("raised") / F.lit(float(operators)), 6).alias("per_operator")
    return out.select(*KEYS, "raised", per_operator)


def _share(cond: Column) -> Column:
    return F.round(F.count_if(cond) / F.count("*"), 9)


def _load(alarms: DataFrame, periods: DataFrame, operators: int) -> DataFrame:
    n = F.col("raised")
    return (
        _interval_counts(alarms, periods)
        .groupBy("line_id", "period")
        .agg(
            F.count("*").alias("intervals"),
            F.round(F.avg(n), 6).alias("per_10min_mean"),
            F.max(n).alias("per_10min_peak"),
            _share(n <= ACCEPTABLE_PER_10MIN * operators).alias("share_acceptable"),
            _share(n <= MANAGEABLE_PER_10MIN * operators).alias("share_manageable"),
            _share(n > FLOOD_PER_10MIN * operators).alias("share_flood"),
            F.count_if(n > FLOOD_PER_10MIN * operators).alias("floods"),
        )
    )


def _line_counts(alarms: DataFrame, periods: DataFrame) -> DataFrame:
    """raised, chattering and top10 (raised by the 10 most frequent (machine, alarm_type)) per period."""
    by_pair = raised_in(alarms, periods).groupBy("line_id", "period", "machine_id", "alarm_type")
    pairs = by_pair.agg(F.count("*").alias("n"), F.count_if("chattering").alias("chattering"))
    rank = Window.partitionBy("line_id", "period").orderBy(F.desc("n"), "machine_id", "alarm_type")
    top = F.when(F.row_number().over(rank) <= TOP_N, F.col("n")).otherwise(0)
    pairs = pairs.withColumn("top", top)
    return pairs.groupBy("line_id", "period").agg(
        F.sum("n").alias("raised"), F.sum("top").alias("top10"), F.sum("chattering").alias("chattering")
    )


def alarm_load(alarms: DataFrame, periods: DataFrame, operators: int = 1) -> DataFrame:
    """Report ``alarm_load``: per line and period, the ISA-18.2 alarm-rate figures."""
    _check(operators)
    standing = standing_in(alarms, periods).groupBy("line_id", "period").agg(F.count("*").alias("standing"))
    out = (
        periods.join(_load(alarms, periods, operators), ["line_id", "period"], "left")
        .join(_line_counts(alarms, periods), ["line_id", "period"], "left")
        .join(standing, ["line_id", "period"], "left")
    )
    zero = F.lit(0).cast("long")
    for c in ("intervals", "floods", "raised", "top10", "standing", "chattering"):
        out = out.withColumn(c, F.coalesce(c, zero))
    out = out.withColumn("operators", F.lit(operators).cast("long"))
    share = F.when(F.col("raised") > 0, F.round(F.col("top10") / F.col("raised"), 6)).alias("top10_share")
    out = _keyed(out, F.concat(F.lit("line:"), "line_id"), F.lit(""))
    return out.select(
        *KEYS,
        "raised",
        "operators",
        "intervals",
        "per_10min_mean",
        "per_10min_peak",
        "share_acceptable",
        "share_manageable",
        "share_flood",
        "floods",
        share,
        "standing",
        "chattering",
    )


def anomaly_counts(anomalies: DataFrame, periods: DataFrame) -> DataFrame:
    """Report ``anomalies``: per machine and detector (item), the anomalies in the period
    (``count``) and their ``mean_score`` (null when no score)."""
    rows = anomalies.join(periods, "line_id").where(_in_period("event_time"))
    out = rows.groupBy(*PERIOD, "machine_id", "detector").agg(
        F.count("*").alias("count"), F.round(F.avg("score"), 6).alias("mean_score")
    )
    out = _keyed(out, F.concat(F.lit("machine:"), "machine_id"), F.coalesce("detector", F.lit("")))
    return out.select(*KEYS, "count", "mean_score")
