"""``twin spark``: historical analytics on Spark (docs/analytics.md).

``twin spark report`` reads a range of history (Cassandra, or the raw Kafka topics), computes OEE with
its loss tree, the downtime Pareto, MTBF/MTTR, cycle times, alarm statistics, energy per good part and
the schedule record per shift and day, stores them in Cassandra's report tables (a rerun replaces the
same periods) and writes a self-contained HTML report with charts plus CSV.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.query import parse_time
from twin.errors import ConfigError
from twin.settings import Settings

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

app = typer.Typer(
    help="Historical analytics on Spark: OEE losses, Pareto, MTBF/MTTR, alarm load.",
    no_args_is_help=True,
    add_completion=False,
)


def when(text: str, tz: str = "UTC", now: datetime | None = None) -> datetime:
    """``today``/``yesterday`` (midnight in the calendar's zone), ``now``, an ISO date or time, or a
    relative ``8h``/``2d`` ago."""
    from zoneinfo import ZoneInfo

    now = now or datetime.now(UTC)
    value = text.strip().lower()
    local = now.astimezone(ZoneInfo(tz))
    if value in ("today", "yesterday"):
        day = local.date() - timedelta(days=1 if value == "yesterday" else 0)
        return datetime.combine(day, time(0), ZoneInfo(tz)).astimezone(UTC)
    if len(value) == 10 and value[4] == "-" and value[7] == "-":  # a date: its midnight in the zone
        try:
            day = datetime.fromisoformat(value).date()
        except ValueError:
            msg = f"cannot read date {text!r}: use YYYY-MM-DD"
            raise ConfigError(msg) from None
        return datetime.combine(day, time(0), ZoneInfo(tz)).astimezone(UTC)
    return datetime.fromtimestamp(parse_time(text, now) / 1000, UTC)


@app.command("report")
def report(
    start: str = typer.Option(..., "--from", help="today, yesterday, a date (2026-12-07), an ISO time or 2d"),
    end: str = typer.Option("now", "--to", help="end of the range (exclusive): now, a date, an ISO time"),
    line: str | None = typer.Option(None, "--line", help="one line (default: every line with history)"),
    shift_calendar: Path | None = typer.Option(
        None, "--shift-calendar", help="shift calendar YAML (default: three 8-hour shifts, 24/7)"
    ),
    master: str | None = typer.Option(
        None, "--master", help="Spark master: local[*] (default, TWIN_SPARK__MASTER), spark://..., k8s://..."
    ),
    out: Path = typer.Option(Path("reports"), "--out", help="directory of report.html and the CSV files"),
    source: str = typer.Option("cassandra", "--source", help="cassandra (the history) or kafka (raw topics)"),
    store: bool = typer.Option(True, "--store/--no-store", help="write the report tables to Cassandra"),
    parquet: bool = typer.Option(
        False, "--parquet", help="also export every table as Parquet under OUT/parquet"
    ),
) -> None:
    """Compute the analytics of a range and write the HTML report (and the Cassandra report tables)."""
    from jobs.spark.calendar import ShiftCalendar
    from jobs.spark.run import run_report

    if source not in ("cassandra", "kafka"):
        msg = f"--source must be cassandra or kafka, got {source!r}"
        raise ConfigError(msg)
    calendar = ShiftCalendar.load(shift_calendar)
    t0, t1 = when(start, calendar.timezone), when(end, calendar.timezone)
    if t1 <= t0:
        msg = f"--from ({start}) must be before --to ({end})"
        raise ConfigError(msg)
    settings = Settings()
    out.mkdir(parents=True, exist_ok=True)
    if store or source == "cassandra":
        _migrate(settings)  # the report tables (and a clear line when Cassandra is down)
    layout = None
    if settings.processors.factory_file is not None:
        from sim import load_plant_file

        layout = load_plant_file(settings.processors.factory_file).line_order()
    with console.status("starting") as status:

        def progress(message: str) -> None:
            status.update(message)
            console.print(f"  {message}")

        result = run_report(
            settings,
            start=t0,
            end=t1,
            line_id=line,
            calendar=calendar,
            master=master,
            source=source,
            out_dir=out,
            store=store,
            parquet=parquet,
            progress=progress,
            layout=layout,
        )
    oee = result.tables.get("oee")
    if oee is not None and len(oee):
        table = Table(title=f"OEE per day, {t0:%Y-%m-%d %H:%M} to {t1:%Y-%m-%d %H:%M} UTC")
        for col in ("line", "day", "availability", "performance", "quality", "OEE", "good parts"):
            table.add_column(col, justify="right" if col != "line" else "left")
        days = oee[(oee["kind"] == "day") & oee["scope"].str.startswith("line:")].sort_values(
            ["line_id", "period"]
        )
        for r in days.itertuples():
            table.add_row(
                r.line_id,
                r.period,
                f"{r.availability:.1%}",
                f"{r.performance:.1%}",
                f"{r.quality:.1%}",
                f"{r.oee:.1%}",
                str(r.good_count),
            )
        console.print(table)
    stored = f"; {result.rows_written} rows stored in Cassandra" if store else ""
    console.print(f"{len(result.lines)} line(s), {result.periods} periods{stored}")
    if result.html is not None:
        console.print(f"report: {result.html}")


def _migrate(settings: Settings) -> None:
    """``twin db migrate``'s work: the keyspace and its tables, the report tables included."""
    from sinks.cassandra.connection import connect
    from sinks.cassandra.schema import Migrator, replication

    c = settings.cassandra
    cluster, session = connect(settings)
    try:
        Migrator(session, c.keyspace).migrate(
            replication_options=replication(c.replication_factor), ttl_s=c.ttl_s
        )
    finally:
        cluster.shutdown()
