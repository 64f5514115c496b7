"""Report tables in Cassandra (``report_rows``, ``report_periods``; migration 0005).

A report frame (key columns ``jobs.spark.oee.KEYS``, ``kind``, numeric metrics, text labels) becomes
rows of the generic ``report_rows`` table: numeric columns go into ``metrics``, text columns into
``labels`` (nulls left out). A run replaces each (report, line, period) partition: it marks the
period ``running`` in ``report_periods``, deletes the partitions, writes the rows through the Spark
Cassandra Connector and marks the period ``complete`` with its row counts. Readers (the gateway, the
report) take complete periods only, so a run that fails half-way never passes for a finished one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from twin.errors import AnalyticsError
from twin.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session
    from pyspark.sql import DataFrame

ROW_KEYS = ("report", "line_id", "period", "scope", "item", "kind", "period_start", "period_end")
_NUMERIC = ("double", "float", "bigint", "int", "smallint", "tinyint", "decimal")


def to_rows(frame: DataFrame, report: str) -> DataFrame:
    """``frame`` as ``report_rows`` rows (metrics and labels maps, nulls dropped)."""
    from pyspark.sql import functions as F

    keys = {"line_id", "period", "scope", "item", "kind", "period_start", "period_end"}
    numeric = [n for n, t in frame.dtypes if n not in keys and t.split("(")[0] in _NUMERIC]
    text = [n for n, t in frame.dtypes if n not in keys and t == "string"]

    def mapped(names: list[str], cast: str) -> Any:
        if not names:
            return F.create_map().cast(f"map<string,{cast}>")
        pairs = [x for n in names for x in (F.lit(n), F.col(n).cast(cast))]
        return F.map_filter(F.create_map(*pairs), lambda _k, v: v.isNotNull())

    kind = F.col("kind") if "kind" in frame.columns else F.lit("")
    return frame.select(
        F.lit(report).alias("report"),
        "line_id",
        "period",
        "scope",
        "item",
        kind.alias("kind"),
        "period_start",
        "period_end",
        mapped(numeric, "double").alias("metrics"),
        mapped(text, "string").alias("labels"),
    )


@dataclass(slots=True)
class RunRecord:
    """What one run wrote: per (line, period), rows per report."""

    run_id: uuid.UUID = field(default_factory=uuid.uuid4)
    rows: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)


class ReportStore:
    """The report tables of one keyspace, through the Python driver (markers, deletes, reads)."""

    def __init__(self, settings: Settings, keyspace: str | None = None) -> None:
        self.settings = settings
        self.keyspace = keyspace or settings.cassandra.keyspace
        self._cluster: Cluster | None = None
        self._session: Session | None = None

    def open(self) -> ReportStore:
        """Connect (one ``AnalyticsError`` line if Cassandra is down or the keyspace lacks the report
        tables: ``twin db migrate`` creates them, and ``twin spark report`` runs it first)."""
        from cassandra import DriverException
        from cassandra.cluster import NoHostAvailable

        from twin.clients import cassandra_cluster

        c = self.settings.cassandra
        where = ",".join(f"{h}:{c.port}" for h in c.contact_points)
        self._cluster = cassandra_cluster(self.settings)
        try:
            self._session = self._cluster.connect()
            found = self._session.execute(
                "SELECT table_name FROM system_schema.tables "
                "WHERE keyspace_name = %s AND table_name = 'report_rows'",
                (self.keyspace,),
            ).one()
        except (NoHostAvailable, DriverException, OSError) as exc:
            self.close()
            msg = f"Cassandra at {where} is not reachable ({type(exc).__name__}); is it running? "
            msg += "(`twin infra status`)"
            raise AnalyticsError(msg) from None
        if found is None:
            self.close()
            msg = f"keyspace {self.keyspace} has no report tables: run `twin db migrate`"
            raise AnalyticsError(msg)
        return self

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None

    def __enter__(self) -> ReportStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def session(self) -> Session:
        if self._session is None:
            msg = "the report store is not open"
            raise AnalyticsError(msg)
        return self._session

    def _run(self, cql: str, params: tuple[Any, ...]) -> Any:
        from cassandra import DriverException

        try:
            return self.session.execute(cql.format(ks=self.keyspace), params)
        except DriverException as exc:
            msg = f"Cassandra failed while writing the report: {type(exc).__name__}: {exc}"
            raise AnalyticsError(msg.splitlines()[0]) from None

    def begin(self, periods: Iterable[tuple[str, str, str, datetime, datetime]], run: RunRecord) -> None:
        """Mark each (line, period, kind, start, end) ``running``."""
        now = datetime.now(UTC)
        for line_id, period, kind, start, end in periods:
            self._run(
                "INSERT INTO {ks}.report_periods (line_id, kind, period, period_start, period_end, status, "
                "run_id, started_at, finished_at, reports, source) VALUES (%s, %s, %s, %s, %s, 'running', "
                "%s, %s, null, null, 'spark')",
                (line_id, kind, period, start, end, run.run_id, now),
            )

    def clear(self, reports: Iterable[str], periods: Iterable[tuple[str, str]]) -> None:
        """Delete the (report, line, period) partitions about to be written again."""
        pairs = list(periods)
        for report in reports:
            for line_id, period in pairs:
                self._run(
                    "DELETE FROM {ks}.report_rows WHERE report = %s AND line_id = %s AND period = %s",
                    (report, line_id, period),
                )

    def complete(self, periods: Iterable[tuple[str, str, str, datetime, datetime]], run: RunRecord) -> None:
        now = datetime.now(UTC)
        for line_id, period, kind, _start, _end in periods:
            counts = run.rows.get((line_id, period), {})
            self._run(
                "UPDATE {ks}.report_periods SET status = 'complete', finished_at = %s, reports = %s "
                "WHERE line_id = %s AND kind = %s AND period = %s",
                (now, counts, line_id, kind, period),
            )

    def complete_periods(self, line_id: str, kind: str, limit: int = 31) -> list[dict[str, Any]]:
        """The newest complete periods of a line (newest first; the gateway reads them through
        ``sinks.cassandra.queries.History``)."""
        rows = self._run(
            "SELECT * FROM {ks}.report_periods WHERE line_id = %s AND kind = %s", (line_id, kind)
        )
        return [dict(r._asdict()) for r in rows if r.status == "complete"][:limit]


def write_rows(rows: DataFrame, settings: Settings, keyspace: str | None = None) -> None:
    """Append ``to_rows`` rows to ``report_rows`` through the connector."""
    from jobs.spark.sources import CASSANDRA

    ks = keyspace or settings.cassandra.keyspace
    rows.write.format(CASSANDRA).options(keyspace=ks, table="report_rows").mode("append").save()


def count_rows(frames: Mapping[str, Any], run: RunRecord) -> None:
    """Record per (line, period) how many rows each report (pandas frames) has."""
    for report, df in frames.items():
        if len(df) == 0:
            continue
        for (line_id, period), n in df.groupby(["line_id", "period"]).size().items():
            run.rows.setdefault((str(line_id), str(period)), {})[report] = int(n)
