"""A simulated line → Kafka → the Cassandra sink → ``run_report`` → report tables, on the real servers:
the day's OEE against a recount from the events and the streaming KPI windows, rerun idempotence,
the Kafka path, and a run that dies half-way."""

from __future__ import annotations

import math
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jobs.spark.run import run_report
from jobs.spark.sources import from_cassandra, from_kafka
from jobs.spark.store import ReportStore
from processors.base import plain
from producers.records import Outgoing
from sinks.cassandra import CassandraSink, Migrator
from sinks.cassandra.schema import replication
from tests.integration.sinks.sink_helpers import START_MS, SinkNamespace, history, sink_namespace
from twin.errors import AnalyticsError
from twin.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = datetime.fromtimestamp(START_MS / 1000, UTC)  # 16:00 UTC
END = START + timedelta(hours=2)  # the hours whose streaming windows closed within the history
DAY = START.date().isoformat()


@pytest.fixture(scope="module")
def line(settings: Settings, cassandra: Session) -> Iterator[tuple[SinkNamespace, str, list[Outgoing]]]:
    """Three simulated hours stored by the real Cassandra sink in a keyspace of their own."""
    events = history(3.0, seed=7)
    keyspace = f"test_spark_{uuid.uuid4().hex[:8]}"
    Migrator(cassandra, keyspace).migrate(replication_options=replication(1))
    try:
        with sink_namespace(settings) as ns:
            ns.publish(events)
            runner = ns.start(CassandraSink(ns.settings, keyspace=keyspace))
            ns.wait_committed(runner)
            ns.stop(runner)
            yield ns, keyspace, events
    finally:
        cassandra.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)


@pytest.fixture(scope="module")
def report(
    line: tuple[SinkNamespace, str, list[Outgoing]],
    spark: SparkSession,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    ns, keyspace, _ = line
    out = tmp_path_factory.mktemp("report")
    return run_report(ns.settings, start=START, end=END, keyspace=keyspace, spark=spark, out_dir=out)


def recount(events: list[Outgoing]) -> dict[str, dict[str, float]]:
    """Per machine, the OEE of [START, END) from the streaming hourly MACHINE windows (summed time
    and counts, docs/kpis.md) and the good parts counted from the production events themselves."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in events:
        r = plain(e.record)
        if e.topic == "twin.kpis" and r["scope"] == "MACHINE" and r["window_size_s"] == 3600:
            if START_MS <= r["window_start"] < START_MS + 7_200_000:
                s = sums[r["scope_id"]]
                s["planned"] += r["planned_time_s"]
                s["run"] += r["run_time_s"]
                s["total"] += r["total_count"]
                s["good"] += r["good_count"]
                s["ideal"] += r["ideal_cycle_time_s"] * r["total_count"]
                s["windows"] += 1
        elif e.topic == "factory.production" and START_MS <= r["event_time"] < START_MS + 7_200_000:
            sums[r["machine_id"]]["events_good"] += 1 if r["good"] else 0
    out = {}
    for machine, s in sums.items():
        a = s["run"] / s["planned"] if s["planned"] else 0.0
        p = min(1.0, s["ideal"] / s["run"]) if s["run"] else 0.0
        q = s["good"] / s["total"] if s["total"] else 1.0
        out[machine] = {**s, "availability": a, "performance": p, "quality": q, "oee": a * p * q}
    return out


def test_the_days_oee_agrees_with_the_streaming_windows_and_the_events(
    line: tuple[SinkNamespace, str, list[Outgoing]], report: Any
) -> None:
    expected = recount(line[2])
    oee = report.tables["oee"]
    days = oee[(oee["period"] == DAY) & oee["scope"].str.startswith("machine:")]
    assert len(days) == 5 and all(expected[m]["windows"] == 2 for m in expected)
    for row in days.itertuples():
        want = expected[row.scope.removeprefix("machine:")]
        assert row.good_count == want["good"] == want["events_good"]
        assert row.total_count == want["total"]
        assert row.planned_s == pytest.approx(want["planned"], abs=1e-6)
        assert row.run_s == pytest.approx(want["run"], abs=1e-6)
        for k in ("availability", "performance", "quality", "oee"):
            assert getattr(row, k) == pytest.approx(want[k], abs=1e-8), (row.scope, k)
        # The loss tree adds up to the OEE.
        assert row.fully_productive_s / row.planned_s == pytest.approx(row.oee, abs=1e-8)
    assert report.html is not None and "Loss waterfall" in report.html.read_text()


def test_report_tables_are_stored_complete_and_a_rerun_gives_identical_rows(
    line: tuple[SinkNamespace, str, list[Outgoing]], report: Any, spark: SparkSession, cassandra: Session
) -> None:
    ns, keyspace, _ = line
    line_id = report.lines[0]

    def snapshot() -> list[tuple[Any, ...]]:
        rows = cassandra.execute(f"SELECT * FROM {keyspace}.report_rows", timeout=60)
        return sorted(tuple(r) for r in rows)

    first = snapshot()
    assert {r[0] for r in first} >= {"oee", "downtime", "reliability", "cycle_time", "alarm_load", "energy"}
    with ReportStore(ns.settings, keyspace).open() as store:
        periods = {p["period"]: p for p in store.complete_periods(line_id, "day")}
        assert periods[DAY]["reports"]["oee"] == 6  # five machines and the line
    run_report(ns.settings, start=START, end=END, keyspace=keyspace, spark=spark)
    assert snapshot() == first


def test_the_kafka_path_decodes_what_the_producers_wrote(
    line: tuple[SinkNamespace, str, list[Outgoing]], spark: SparkSession
) -> None:
    ns, keyspace, events = line
    end = START + timedelta(hours=3)
    kafka = from_kafka(spark, ns.settings, start=START, end=end, tables=("states", "parts"))
    stored = from_cassandra(
        spark, ns.settings, start=START, end=end, keyspace=keyspace, tables=("states", "parts")
    )
    published = {
        str(plain(e.record)["event_id"]): plain(e.record) for e in events if e.topic == "factory.production"
    }
    parts = {r["event_id"]: r.asDict() for r in kafka.parts.collect()}
    assert parts.keys() == published.keys()
    some = next(iter(published.values()))
    got = parts[str(some["event_id"])]
    assert (got["machine_id"], got["good"], got["product_family"]) == (
        some["machine_id"],
        some["good"],
        some["product_family"],
    )
    assert math.isclose(got["cycle_time_s"], some["cycle_time_s"])
    assert int(got["event_time"].replace(tzinfo=UTC).timestamp() * 1000) == some["event_time"]
    cols = ["machine_id", "event_id", "state", "reason", "previous"]
    assert sorted(kafka.states.select(*cols).collect()) == sorted(stored.states.select(*cols).collect())
    assert sorted(kafka.parts.collect()) == sorted(stored.parts.collect())


def test_the_gateway_serves_the_latest_report_tables(
    line: tuple[SinkNamespace, str, list[Outgoing]], report: Any, cassandra: Session
) -> None:
    from fastapi.testclient import TestClient

    from xr_gateway.app import create_app
    from xr_gateway.auth import Role, TokenVerifier
    from xr_gateway.history import CassandraHistory
    from xr_gateway.settings import GatewaySettings

    ns, keyspace, _ = line
    line_id = report.lines[0]
    gw = GatewaySettings(host="127.0.0.1", port=8765, jwt_secret="s" * 40)
    verifier = TokenVerifier.from_settings(gw)
    app = create_app(ns.settings, gw, verifier, history=CassandraHistory(cassandra, keyspace), kafka=False)
    headers = {"Authorization": f"Bearer {verifier.mint('viewer', Role.VIEWER)}"}
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        periods = client.get(f"/api/reports/{line_id}/periods", headers=headers).json()
        assert periods[0]["period"] == DAY and periods[0]["status"] == "complete"
        body = client.get(f"/api/reports/{line_id}/oee", headers=headers).json()
        assert body["period"] == DAY
        line_row = next(r for r in body["rows"] if r["scope"] == f"line:{line_id}")
        want = report.tables["oee"]
        want = want[(want["period"] == DAY) & (want["scope"] == f"line:{line_id}")].iloc[0]
        assert line_row["oee"] == want["oee"] and line_row["kind"] == "day"
        shifts = client.get(f"/api/reports/{line_id}/downtime?kind=shift", headers=headers)
        assert shifts.status_code in (200, 404)
        missing = client.get(f"/api/reports/{line_id}/oee?period=1999-01-01", headers=headers)
        assert missing.status_code == 404


def test_a_run_that_fails_half_way_leaves_its_periods_marked_running(
    line: tuple[SinkNamespace, str, list[Outgoing]],
    report: Any,
    spark: SparkSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns, keyspace, _ = line
    line_id = report.lines[0]

    def boom(*_a: object, **_k: object) -> None:
        raise AnalyticsError("Cassandra went away")

    monkeypatch.setattr("jobs.spark.store.write_rows", boom)
    start = START + timedelta(hours=1)  # another period: the day from 17:00
    with pytest.raises(AnalyticsError, match="went away"):
        run_report(ns.settings, start=start, end=END, keyspace=keyspace, spark=spark)
    with ReportStore(ns.settings, keyspace).open() as store:
        marks = store.session.execute(
            f"SELECT period, period_start, status FROM {keyspace}.report_periods WHERE line_id = %s AND kind = 'day'",
            (line_id,),
        )
        # The day's rows were being replaced when the run died: neither run's rows pass for finished.
        assert {r.period: r.status for r in marks}[DAY] == "running"
        assert DAY not in {p["period"] for p in store.complete_periods(line_id, "day")}


def twin(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_cassandra_down_or_java_missing_is_one_line_and_a_failed_exit(tmp_path: Path) -> None:
    import os

    base = {**os.environ, "TWIN_INFRA__STATE_DIR": str(tmp_path)}
    down = twin(
        "spark",
        "report",
        "--from",
        "2025-11-24",
        "--out",
        str(tmp_path),
        env={**base, "TWIN_CASSANDRA__PORT": "1"},
    )
    assert down.returncode == 1
    assert down.stderr.count("\n") == 1 and "Cassandra" in down.stderr, down.stderr
    no_java = {
        **base,
        "JAVA_HOME": str(tmp_path),
        "TWIN_JAVA_HOME": str(tmp_path),
        "PATH": str(Path(sys.executable).parent),
    }
    missing = twin("spark", "report", "--from", "2025-11-24", "--no-store", "--source", "kafka", env=no_java)
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("error: Java not found"), missing.stderr
    assert missing.stderr.count("\n") == 1
