"""Energy per machine and per line, and energy per good part, per report period.

Inputs: ``TELEMETRY``, ``PARTS`` and ``PERIODS`` (``jobs.spark.schema``). Report ``energy``, key
columns ``line_id, period, period_start, period_end, scope, item`` (item ``""``), scope
``machine:<machine_id>`` and ``line:<line_id>``.

Definitions:

- A **power reading** is a telemetry row whose ``channel_values[power_channel]`` (kW) is present and
  not NaN; rows without it are ignored (they neither add energy nor end the previous reading).
  Machines without a single power reading get no row; every other machine gets a row in every period
  of its line (zeros when it did not report then).
- **energy_kwh**: a left Riemann sum. Each reading's power holds from its time until the machine's
  next power reading, but for at most ``max_gap_s`` (60 s): a longer gap counts only ``max_gap_s``
  at that power, the rest counts as no energy. The machine's last reading (no next one) holds for 0
  s. A holding interval that crosses a period boundary is split at it: each period gets its part.
  Summed exactly (decimal kW x microseconds), then rounded to 6 decimals.
- **readings**: power readings whose time is in the period (``period_start <= t < period_end``).
- **mean_power_kw**: for a machine, energy_kwh over the time its readings cover in the period (the
  holding intervals above; null when none); for a line, the sum of its machines' mean power (the
  line's draw while its machines report).
- **good_count**: for a machine, its good parts (``good``) whose ``event_time`` is in the period.
  For a line, the good parts that leave the line: the good parts of its *exit* machines, the machines
  whose good parts never show up (same ``part_id``) at another machine later (in a serial line, the
  last station). Lines whose part ids are per machine make every machine an exit machine.
- **kwh_per_good_part**: energy_kwh / good_count; null without good parts.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

KEYS = ("line_id", "period", "period_start", "period_end", "scope", "item")
PERIOD = ("line_id", "period", "period_start", "period_end")
METRICS = ("energy_kwh", "readings", "mean_power_kw", "good_count", "kwh_per_good_part")
MAX_GAP_S = 60

_US = 1_000_000
_US_PER_H = 3600 * _US
_EXACT = "decimal(38,6)"
DAY_US = 86_400 * _US


def _in_period(t: str) -> Column:
    return (F.col("period_start") <= F.col(t)) & (F.col(t) < F.col("period_end"))


def power_intervals(telemetry: DataFrame, power_channel: str, max_gap_s: int) -> DataFrame:
    """One row per power reading: ``kw``, ``t0``/``t1`` (its holding interval, epoch microseconds)."""
    kw = F.col("channel_values").getItem(power_channel)
    rows = telemetry.select("line_id", "machine_id", "event_time", "event_id", kw.alias("kw"))
    rows = rows.where(F.col("event_time").isNotNull() & F.col("kw").isNotNull() & ~F.isnan("kw"))
    w = Window.partitionBy("line_id", "machine_id").orderBy("event_time", "event_id", "kw")
    t0 = F.unix_micros("event_time")
    # least() skips nulls: the last reading (no next one) must hold 0 s, not max_gap_s
    gap = F.lead(t0).over(w) - t0
    held = F.when(gap.isNotNull(), F.least(gap, F.lit(max_gap_s * _US))).otherwise(0)
    return rows.withColumn("t0", t0).withColumn("t1", t0 + held)


def _days(start: Column, last: Column) -> Column:
    return F.explode(F.sequence(F.floor(start / DAY_US), F.floor(last / DAY_US)))


def _by_day(readings: DataFrame, periods: DataFrame) -> DataFrame:
    """readings x periods of their line that share a UTC day: an equi-join on (line_id, day) instead of
    comparing every reading with every period. Each pair meets once, on the day where its overlap
    (or the reading, for a 0 s one) starts."""
    p0, p1 = F.unix_micros("period_start"), F.unix_micros("period_end")
    period_days = periods.where(p1 > p0).withColumn("day", _days(p0, p1 - 1))
    t0, t1 = F.col("t0"), F.col("t1")
    reading_days = readings.withColumn("day", _days(t0, F.greatest(t1 - 1, t0)))
    pairs = reading_days.join(period_days, ["line_id", "day"])
    return pairs.where(F.col("day") == F.floor(F.greatest(t0, p0) / DAY_US)).drop("day")


def _machine_energy(
    telemetry: DataFrame, periods: DataFrame, power_channel: str, max_gap_s: int
) -> DataFrame:
    """kw_us (exact kW x us), covered_us and readings per machine and period, zeros included."""
    p0, p1 = F.unix_micros("period_start"), F.unix_micros("period_end")
    readings = power_intervals(telemetry, power_channel, max_gap_s)
    hits = _by_day(readings, periods).where((F.col("t0") < p1) & ((F.col("t1") > p0) | (F.col("t0") >= p0)))
    overlap = F.greatest(F.least("t1", p1) - F.greatest("t0", p0), F.lit(0))
    kw_us = F.col("kw").cast("decimal(24,9)") * overlap.cast("decimal(20,0)")
    sums = hits.groupBy("line_id", "period", "machine_id").agg(
        F.sum(kw_us).cast(_EXACT).alias("kw_us"),
        F.sum(overlap).alias("covered_us"),
        F.count_if(_in_period("event_time")).alias("readings"),
    )
    machines = readings.select("line_id", "machine_id").distinct().join(periods, "line_id")
    out = machines.join(sums, ["line_id", "period", "machine_id"], "left")
    return out.fillna({"readings": 0, "covered_us": 0}).withColumn(
        "kw_us", F.coalesce("kw_us", F.lit(0).cast(_EXACT))
    )


def exit_machines(parts: DataFrame) -> DataFrame:
    """(line_id, machine_id) of the machines whose good parts never show up at another machine later."""
    w = Window.partitionBy("line_id", "part_id").orderBy("event_time", "machine_id")
    rows = parts.where(F.col("event_time").isNotNull())
    rows = rows.withColumn("next_machine", F.lead("machine_id").over(w))
    passes_on = (
        F.col("good") & F.col("next_machine").isNotNull() & (F.col("next_machine") != F.col("machine_id"))
    )
    flags = rows.groupBy("line_id", "machine_id").agg(F.max(F.coalesce(passes_on, F.lit(False))).alias("on"))
    return flags.where(~F.col("on")).select("line_id", "machine_id")


def _good(parts: DataFrame, periods: DataFrame) -> DataFrame:
    """Good parts per machine and period."""
    good = parts.where(F.col("good")).join(periods, "line_id").where(_in_period("event_time"))
    return good.groupBy("line_id", "period", "machine_id").agg(F.count("*").alias("good_count"))


def _report(df: DataFrame, scope: Column) -> DataFrame:
    energy = F.round((F.col("kw_us") / _US_PER_H).cast("double"), 6)
    per_part = F.when(F.col("good_count") > 0, F.round(energy / F.col("good_count"), 6))
    out = df.withColumn("energy_kwh", energy).withColumn("kwh_per_good_part", per_part)
    return out.withColumn("scope", scope).withColumn("item", F.lit("")).select(*KEYS, *METRICS)


def _with_good(energy: DataFrame, good: DataFrame) -> DataFrame:
    """Per machine and period: kw_us, readings, good_count and mean_power_kw."""
    out = energy.join(good, ["line_id", "period", "machine_id"], "left").fillna({"good_count": 0})
    mean = F.when(F.col("covered_us") > 0, F.round((F.col("kw_us") / F.col("covered_us")).cast("double"), 6))
    return out.withColumn("mean_power_kw", mean)


def _line_sums(machines: DataFrame, good: DataFrame, exits: DataFrame) -> DataFrame:
    """Per line and period: the machines' kw_us, readings and mean power summed; the exits' good parts."""
    lines = machines.groupBy(*PERIOD).agg(
        F.sum("kw_us").alias("kw_us"),
        F.sum("readings").alias("readings"),
        F.sum(F.col("mean_power_kw").cast(_EXACT)).cast("double").alias("mean_power_kw"),
    )
    by_line = good.join(exits, ["line_id", "machine_id"]).groupBy("line_id", "period")
    line_good = by_line.agg(F.sum("good_count").alias("good_count"))
    return lines.join(line_good, ["line_id", "period"], "left").fillna({"good_count": 0})


def energy(
    telemetry: DataFrame,
    parts: DataFrame,
    periods: DataFrame,
    power_channel: str = "power",
    max_gap_s: int = MAX_GAP_S,
) -> DataFrame:
    """Report ``energy``: rows for each machine with a power channel and for each line with one."""
    good = _good(parts, periods)
    machines = _with_good(_machine_energy(telemetry, periods, power_channel, max_gap_s), good)
    lines = _line_sums(machines, good, exit_machines(parts))
    machine_rows = _report(machines, F.concat(F.lit("machine:"), "machine_id"))
    return machine_rows.unionByName(_report(lines, F.concat(F.lit("line:"), "line_id")))
