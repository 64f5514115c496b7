"""The analytics job: read a range of history, compute every report per period, store them in
Cassandra (replacing those periods) and write the HTML/CSV report. ``main()`` is the entry point of
``spark-submit jobs/spark/run.py`` on a cluster; ``twin spark report`` calls :func:`run_report`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.spark.calendar import ShiftCalendar, periods_frames
from jobs.spark.session import SparkOptions, spark_session
from twin.errors import AnalyticsError, EmptyPeriodError, TwinError
from twin.settings import Settings

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]
    from pyspark.sql import DataFrame, SparkSession

    from jobs.spark.sources import History
    from jobs.spark.store import ReportStore

REPORTS = (
    "oee",
    "downtime",
    "reliability",
    "cycle_time",
    "alarms",
    "alarm_load",
    "alarm_rate",
    "anomalies",
    "energy",
    "schedule",
)

Progress = Callable[[str], None]


@dataclass(slots=True)
class ReportResult:
    lines: list[str]
    periods: int
    tables: dict[str, pd.DataFrame]
    rows_written: int = 0
    html: Path | None = None
    files: list[Path] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)


def compute(
    history: History,
    periods: DataFrame,
    segments: DataFrame,
    *,
    calendar: ShiftCalendar,
    layout: dict[str, list[str]] | None = None,
    kpi_config: Any = None,
) -> dict[str, DataFrame]:
    """Every report frame (lazy) of ``history`` over ``periods``."""
    from jobs.spark import alarms, cycles, downtime, energy, oee, schedule

    h = history
    frames: dict[str, DataFrame] = {
        "oee": oee.oee(h.states, h.parts, periods, segments, kpi_config, layout),
        "downtime": downtime.downtime_pareto(h.states, periods, segments, kpi_config),
        "reliability": downtime.reliability(h.states, h.parts, periods, segments, kpi_config),
        "cycle_time": cycles.cycle_time(h.parts, periods),
        "alarms": alarms.alarm_stats(h.alarms, periods),
        "alarm_load": alarms.alarm_load(h.alarms, periods, calendar.operators),
        "alarm_rate": alarms.alarm_rate(h.alarms, periods, calendar.operators),
        "anomalies": alarms.anomaly_counts(h.anomalies, periods),
        "energy": energy.energy(h.telemetry, h.parts, periods),
        "schedule": schedule.schedule_record(h.plans, h.requests, periods),
    }
    kinds = periods.select("line_id", "period", "kind")
    return {
        name: (df if "kind" in df.columns else df.join(kinds, ["line_id", "period"]))
        for name, df in frames.items()
    }


def spark_error(exc: BaseException, settings: Settings) -> AnalyticsError:
    """One line for an exception out of Spark (Py4J carries the whole Java stack in its text)."""
    text = str(exc)
    c = settings.cassandra
    where = ",".join(f"{h}:{c.port}" for h in c.contact_points)
    if "Failed to open native connection to Cassandra" in text or "NoHostAvailable" in text:
        return AnalyticsError(f"Cassandra at {where} is not reachable; is it running (`twin infra status`)?")
    if "keyspace" in text.lower() and "not found" in text.lower():
        return AnalyticsError(f"keyspace {c.keyspace} has no history tables yet (`twin db migrate`)")
    for raw in text.splitlines():
        line = raw.strip().lstrip(":").strip()
        if line and not line.startswith(("at ", "JVM stacktrace", "An error occurred")):
            return AnalyticsError(f"the Spark job failed: {line[:300]}")
    return AnalyticsError(f"the Spark job failed: {type(exc).__name__}")


def _lines(history: History, line_id: str | None) -> list[str]:
    from pyspark.sql import functions as F

    if line_id is not None:
        return [line_id]
    found = history.states.select("line_id").union(history.parts.select("line_id")).distinct()
    return sorted(r["line_id"] for r in found.where(F.col("line_id").isNotNull()).collect())


def run_report(
    settings: Settings,
    *,
    start: datetime,
    end: datetime,
    line_id: str | None = None,
    calendar: ShiftCalendar | None = None,
    master: str | None = None,
    source: str = "cassandra",
    out_dir: Path | None = None,
    store: bool = True,
    parquet: bool = False,
    keyspace: str | None = None,
    progress: Progress | None = None,
    spark: SparkSession | None = None,
    layout: dict[str, list[str]] | None = None,
) -> ReportResult:
    """Run the analytics over [start, end); see the module doc. Errors are one-line TwinErrors.

    ``layout``: each line's stations in flow order (its output is what leaves the last one), as the
    plant file gives it; without it a line is measured at its constraint alone, as in the stream.
    The keyspace must be migrated (``twin db migrate``)."""
    from jobs.spark.store import ReportStore

    say = progress or (lambda _msg: None)
    calendar = calendar or ShiftCalendar.default()
    job = _Job(settings, start, end, line_id, calendar, keyspace, say, layout)
    report_store = ReportStore(settings, keyspace)
    if store or source == "cassandra":
        say("checking Cassandra")
        report_store.open()  # Cassandra down: one line, before Spark starts
    try:
        if spark is None:
            say(f"starting Spark ({master or settings.spark.master})")
            spark = spark_session(settings, SparkOptions(master=master))
        job.lap("session")
        try:
            result, frames, periods = job.compute(spark, source)
            if store:
                job.store(spark, report_store, result, frames, periods)
            if parquet and out_dir is not None:
                say("exporting Parquet")
                for name in result.tables:
                    path = out_dir / "parquet" / name
                    frames[name].coalesce(1).write.mode("overwrite").parquet(str(path))
                    result.files.append(path)
        except TwinError:
            raise
        except Exception as exc:
            if type(exc).__module__.startswith(("py4j", "pyspark")):
                raise spark_error(exc, settings) from None
            raise
    finally:
        report_store.close()
    if out_dir is not None:
        from jobs.spark.report_html import write_report

        say(f"writing the report to {out_dir}")
        files = write_report(
            result.tables,
            out_dir,
            title="Factory Twin line report",
            line_ids=result.lines,
            period_from=start,
            period_to=end,
            calendar_name=calendar.name,
            generated_at=datetime.now(UTC),
        )
        result.html = files.html
        result.files.extend(files.csvs.values())
        job.lap("html")
    result.timings_s = job.timings
    return result


@dataclass(slots=True)
class _Job:
    settings: Settings
    start: datetime
    end: datetime
    line_id: str | None
    calendar: ShiftCalendar
    keyspace: str | None
    say: Progress
    layout: dict[str, list[str]] | None
    timings: dict[str, float] = field(default_factory=dict)
    clock: float = field(default_factory=time.monotonic)

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = round(now - self.clock, 2)
        self.clock = now

    def compute(
        self, spark: SparkSession, source: str
    ) -> tuple[ReportResult, dict[str, DataFrame], DataFrame]:
        from jobs.spark import sources

        self.say(f"reading history from {source}")
        window = {"start": self.start, "end": self.end, "line_id": self.line_id}
        if source == "kafka":
            history = sources.from_kafka(spark, self.settings, **window)  # type: ignore[arg-type]
        else:
            history = sources.from_cassandra(spark, self.settings, keyspace=self.keyspace, **window)  # type: ignore[arg-type]
        # Every report reads the same few tables: scan each once (the connector's scan is the costly
        # part), not once per report.
        for name in ("states", "parts", "telemetry", "alarms", "anomalies", "plans", "requests"):
            setattr(history, name, getattr(history, name).cache())
        lines = _lines(history, self.line_id)
        self.lap("read")
        if not lines or history.states.limit(1).count() + history.parts.limit(1).count() == 0:
            where = f"line {self.line_id}" if self.line_id else "any line"
            msg = (
                f"no history for {where} from {self.start.isoformat()} to {self.end.isoformat()} in {source} "
                "(is the Cassandra sink running? `twin sink cassandra`; or try --source kafka)"
            )
            raise EmptyPeriodError(msg)
        periods, segments = periods_frames(spark, self.calendar, lines, self.start, self.end)
        periods, segments = periods.cache(), segments.cache()
        periods.count(), segments.count()
        frames = compute(history, periods, segments, calendar=self.calendar, layout=self.layout)
        tables: dict[str, pd.DataFrame] = {}
        for name in list(frames):
            self.say(f"computing {name}")
            frames[name] = frames[name].cache()  # stored and exported as computed here, not again
            tables[name] = frames[name].toPandas()
            self.lap(name)
        return ReportResult(lines, periods.count(), tables), frames, periods

    def store(
        self,
        spark: SparkSession,
        report_store: ReportStore,
        result: ReportResult,
        frames: dict[str, DataFrame],
        periods: DataFrame,
    ) -> None:
        from jobs.spark.store import RunRecord, count_rows, to_rows, write_rows

        self.say("storing report tables in Cassandra")
        marks = [
            (r["line_id"], r["period"], r["kind"], r["period_start"], r["period_end"])
            for r in periods.collect()
        ]
        run = RunRecord()
        count_rows(result.tables, run)
        report_store.begin(marks, run)
        report_store.clear(REPORTS, [(m[0], m[1]) for m in marks])
        for name, pdf in result.tables.items():
            if len(pdf):
                rows = to_rows(frames[name], name)
                write_rows(rows, self.settings, self.keyspace)
                result.rows_written += len(pdf)
        report_store.complete(marks, run)
        self.lap("store")


def main(argv: list[str] | None = None) -> int:
    """``spark-submit jobs/spark/run.py --from 2026-12-07 --to 2026-12-08 [--line L] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="jobs/spark/run.py", description=__doc__)
    parser.add_argument("--from", dest="start", required=True, help="ISO date or time (UTC unless offset)")
    parser.add_argument("--to", dest="end", required=True)
    parser.add_argument("--line")
    parser.add_argument("--shift-calendar", type=Path)
    parser.add_argument("--source", choices=("cassandra", "kafka"), default="cassandra")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-store", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings()
    try:
        result = run_report(
            settings,
            start=_when(args.start),
            end=_when(args.end),
            line_id=args.line,
            calendar=ShiftCalendar.load(args.shift_calendar) if args.shift_calendar else None,
            source=args.source,
            out_dir=args.out,
            store=not args.no_store,
            progress=lambda m: print(m, file=sys.stderr),
        )
    except TwinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{result.periods} periods, {result.rows_written} rows written")
    return 0


def _when(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


if __name__ == "__main__":
    sys.exit(main())
