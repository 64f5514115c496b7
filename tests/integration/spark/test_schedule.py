"""The schedule record on a hand-built line: period A with four requests (one unanswered), four plans
(one without a comparison, one before comparisons existed, one infeasible) and period B empty."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobs.spark.schedule import schedule_record
from jobs.spark.schema import PERIODS, PLANS, REQUESTS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# pyspark 3.5's collect() drops its result socket unclosed (pyspark.rdd._create_local_socket); the
# ResourceWarning surfaces whenever the garbage collector runs, as an unraisable exception.

KEYS = ["line_id", "period", "period_start", "period_end", "scope", "item"]
METRICS = ["requests", "plans", "unanswered", "feasible", "chosen", "share", "mean_solve_ms", "mean_gap"]


def at(hhmmss: str) -> datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return datetime(2026, 12, 8, h, m, s, tzinfo=UTC)


def outcome(solver: str, gap: float | None, ms: int) -> dict[str, Any]:
    return {"solver": solver, "status": "FEASIBLE", "objective": 10.0, "gap": gap, "solve_time_ms": ms}


def plan(
    t: str, request_id: str, solver: str, status: str, ms: int, comparison: list[dict[str, Any]] | None
) -> tuple[Any, ...]:
    return ("L1", at(t), f"plan-{request_id}", request_id, solver, status, 10.0, 9.0, ms, "best", comparison)


def report(spark: SparkSession) -> DataFrame:
    periods = [
        ("L1", "A", "shift", at("10:00:00"), at("11:00:00")),
        ("L1", "B", "shift", at("11:00:00"), at("12:00:00")),
    ]
    requests = [
        ("L1", at("10:05:00"), "r1", "MACHINE_DOWN", "m1"),
        ("L1", at("10:20:00"), "r2", "MACHINE_DOWN", "m2"),
        ("L1", at("10:40:00"), "r3", "MAINTENANCE", "m3"),
        ("L1", at("10:59:59"), "r4", "RUSH_ORDER", None),  # no plan answers it
        ("L2", at("10:30:00"), "r9", "MACHINE_DOWN", "x1"),  # another line
    ]
    plans = [
        plan(
            "10:05:00", "r1", "cpsat", "OPTIMAL", 100, [outcome("cpsat", 0.0, 100), outcome("qaoa", 0.2, 900)]
        ),
        plan(
            "10:20:00", "r2", "qaoa", "FEASIBLE", 300, [outcome("cpsat", 0.1, 50), outcome("qaoa", 0.05, 300)]
        ),
        plan("10:40:00", "r3", "cpsat", "FEASIBLE", 200, []),  # written before comparisons: gap unknown
        plan("10:50:00", "r0", "anneal", "INFEASIBLE", 400, None),  # its request is not in the input
    ]
    return schedule_record(
        spark.createDataFrame(plans, PLANS),
        spark.createDataFrame(requests, REQUESTS),
        spark.createDataFrame(periods, PERIODS),
    )


def test_schedule_record(spark: SparkSession) -> None:
    df = report(spark)
    assert df.columns == [*KEYS, *METRICS]
    got = {(r["period"], r["scope"], r["item"]): [r[m] for m in METRICS] for r in df.collect()}
    assert got == {
        # r1-r4; 4 plans; r4 unanswered; 3 OPTIMAL/FEASIBLE; (100 + 300 + 200 + 400) / 4 = 250 ms;
        # gaps known for r1 (cpsat 0.0) and r2 (qaoa 0.05): 0.025
        ("A", "line:L1", ""): [4, 4, 1, 3, None, None, 250.0, 0.025],
        # cpsat: r1, r3: 2 of 4, (100 + 200) / 2 ms, gap of r1 only
        ("A", "line:L1", "solver:cpsat"): [None, None, None, None, 2, 0.5, 150.0, 0.0],
        ("A", "line:L1", "solver:qaoa"): [None, None, None, None, 1, 0.25, 300.0, 0.05],
        ("A", "line:L1", "solver:anneal"): [None, None, None, None, 1, 0.25, 400.0, None],
        ("A", "line:L1", "trigger:MACHINE_DOWN"): [2, None, None, None, None, None, None, None],
        ("A", "line:L1", "trigger:MAINTENANCE"): [1, None, None, None, None, None, None, None],
        ("A", "line:L1", "trigger:RUSH_ORDER"): [1, None, None, None, None, None, None, None],
        # nothing in B: zeros, no means, no solver or trigger rows
        ("B", "line:L1", ""): [0, 0, 0, 0, None, None, None, None],
    }
