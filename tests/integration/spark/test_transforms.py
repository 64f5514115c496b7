"""OEE with its loss tree, downtime Pareto, reliability and cycle times on small frames, against
figures computed by hand (each in a comment)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from jobs.spark import schema as S
from jobs.spark.cycles import cycle_time
from jobs.spark.downtime import downtime_pareto, reliability
from jobs.spark.oee import oee

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

T0 = datetime(2026, 12, 8, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def state(
    m: str, at: float, state: str, reason: str, previous: str | None = None, line: str = "L"
) -> tuple[Any, ...]:
    return (m, line, t(at), f"{m}-{at}-{state}", previous, state, reason)


def part(
    m: str, at: float, ideal: float, good: bool = True, cycle: float | None = None, family: str = "F"
) -> tuple[Any, ...]:
    return (
        m,
        "L",
        t(at),
        f"{m}-p{at}",
        f"p{at}",
        family,
        float(cycle if cycle is not None else ideal),
        float(ideal),
        good,
        None if good else "crack",
    )


def frames(
    spark: SparkSession,
    windows: list[tuple[str, float, float]],
    segments: list[tuple[str, float, float]] | None = None,
) -> tuple[DataFrame, DataFrame]:
    periods = spark.createDataFrame([("L", p, "shift", t(a), t(b)) for p, a, b in windows], S.PERIODS)
    segs = segments if segments is not None else windows
    return periods, spark.createDataFrame([("L", p, t(a), t(b)) for p, a, b in segs], S.SEGMENTS)


def by(rows: list[Any], *keys: str) -> dict[Any, dict[str, Any]]:
    """Rows by their key columns (one column: its value, several: a tuple)."""
    return {(r[keys[0]] if len(keys) == 1 else tuple(r[k] for k in keys)): r.asDict() for r in rows}


@pytest.fixture(scope="module")
def worked(spark: SparkSession) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame]:
    """docs/kpis.md's worked example: RUNNING 0 s, DOWN/breakdown 30 s, RUNNING 45 s,
    IDLE/planned_break 50 s, SETUP/changeover 70 s, RUNNING 100 s; parts at 10, 20, 30 s (ideal 8 s,
    actual 9, 10, 11 s), the one at 30 s scrap."""
    states = spark.createDataFrame(
        [
            state("m1", 0, "RUNNING", "start"),
            state("m1", 30, "DOWN", "breakdown", "RUNNING"),
            state("m1", 45, "RUNNING", "repaired", "DOWN"),
            state("m1", 50, "IDLE", "planned_break", "RUNNING"),
            state("m1", 70, "SETUP", "changeover", "IDLE"),
            state("m1", 100, "RUNNING", "done", "SETUP"),
        ],
        S.STATES,
    )
    parts = spark.createDataFrame(
        [part("m1", 10, 8, cycle=9), part("m1", 20, 8, cycle=10), part("m1", 30, 8, False, cycle=11)], S.PARTS
    )
    periods, segments = frames(spark, [("w0", 0, 60), ("w1", 60, 120)])
    return states, parts, periods, segments


def test_oee_and_its_loss_tree_match_the_worked_example(worked: tuple[DataFrame, ...]) -> None:
    states, parts, periods, segments = worked
    rows = by(oee(states, parts, periods, segments).collect(), "period", "scope")
    w0 = rows["w0", "machine:m1"]
    # planned = 60 - 10 (break 50-60) = 50; run = 50 - 15 (DOWN 30-45) = 35; A = 35/50.
    assert (w0["planned_s"], w0["breakdown_s"], w0["run_s"], w0["planned_stop_s"]) == (50, 15, 35, 10)
    # net = min(35, 3 x 8) = 24, P = 24/35; Q = 2/3; fully = 24 x 2/3 = 16; OEE = 16/50 = 0.32.
    assert w0["availability"] == pytest.approx(0.7)
    assert w0["performance"] == pytest.approx(24 / 35)
    assert w0["quality"] == pytest.approx(2 / 3)
    assert w0["oee"] == pytest.approx(0.32)
    assert (w0["net_productive_s"], w0["fully_productive_s"], w0["quality_loss_s"]) == (24, 16, 8)
    assert w0["speed_loss_s"] == 11  # 35 - 24, no starvation or blocking
    # w1: break 60-70 (planned stop), SETUP 70-100 (loss), RUNNING 100-120: planned 50, run 20.
    w1 = rows["w1", "machine:m1"]
    assert (w1["planned_s"], w1["setup_s"], w1["run_s"], w1["total_count"]) == (50, 30, 20, 0)
    assert (w1["availability"], w1["performance"], w1["quality"], w1["oee"]) == (0.4, 0.0, 1.0, 0.0)
    # One machine, no layout: the line is that machine.
    line = {k: v for k, v in rows["w0", "line:L"].items() if k not in ("scope",)}
    assert line == {k: v for k, v in w0.items() if k != "scope"}


def test_the_loss_tree_adds_up_with_starvation_blocking_and_unknown_time(spark: SparkSession) -> None:
    states = spark.createDataFrame(
        [
            state("m1", 100, "RUNNING", "start"),  # 0-100 s: no state known yet
            state("m1", 200, "STARVED", "starved", "RUNNING"),
            state("m1", 260, "BLOCKED", "blocked", "STARVED"),
            state("m1", 280, "DOWN", "maintenance", "BLOCKED"),
            state("m1", 300, "RUNNING", "maintenance_done", "DOWN"),
        ],
        S.STATES,
    )
    parts = spark.createDataFrame([part("m1", 150 + 10 * i, 10) for i in range(10)], S.PARTS)
    periods, segments = frames(spark, [("p", 0, 400)])
    r = by(oee(states, parts, periods, segments).collect(), "scope")["machine:m1"]
    # unknown 100; planned 300; maintenance 20 (a stop, not a breakdown); run 280.
    assert (r["unknown_s"], r["planned_s"], r["maintenance_s"], r["breakdown_s"], r["run_s"]) == (
        100,
        300,
        20,
        0,
        280,
    )
    # net = min(280, 10 x 10) = 100; performance loss 180 = starved 60 + blocked 20 + speed 100.
    assert (r["net_productive_s"], r["starved_s"], r["blocked_s"], r["speed_loss_s"]) == (100, 60, 20, 100)
    assert r["oee"] == pytest.approx(100 / 300)


def test_calendar_time_outside_the_scheduled_segments_is_not_planned(spark: SparkSession) -> None:
    states = spark.createDataFrame([state("m1", 0, "RUNNING", "start")], S.STATES)
    parts = spark.createDataFrame([part("m1", 30, 20)], S.PARTS)
    # A 120 s shift with a 20 s break (60-80) in the calendar.
    periods, segments = frames(spark, [("p", 0, 120)], [("p", 0, 60), ("p", 80, 120)])
    r = by(oee(states, parts, periods, segments).collect(), "scope")["machine:m1"]
    assert (r["calendar_s"], r["not_scheduled_s"], r["planned_s"], r["run_s"]) == (120, 20, 100, 100)
    assert r["oee"] == pytest.approx(20 / 100)


def test_a_line_is_measured_at_its_constraint_with_output_at_its_last_station(spark: SparkSession) -> None:
    states = spark.createDataFrame(
        [
            state("a", 0, "RUNNING", "start"),
            state("b", 0, "RUNNING", "start"),
            state("b", 50, "DOWN", "breakdown", "RUNNING"),
            state("b", 60, "RUNNING", "repaired", "DOWN"),
            state("c", 0, "RUNNING", "start"),
        ],
        S.STATES,
    )
    # b is the constraint (ideal 20 s); c is the exit: 3 good there; 1 scrapped at a.
    parts = spark.createDataFrame(
        [
            part("a", 10, 10, False),
            part("a", 20, 10),
            part("b", 30, 20),
            part("b", 70, 20),
            part("c", 40, 5),
            part("c", 80, 5),
            part("c", 90, 5),
        ],
        S.PARTS,
    )
    periods, segments = frames(spark, [("p", 0, 100)])
    rows = by(oee(states, parts, periods, segments, layout={"L": ["a", "b", "c"]}).collect(), "scope")
    line = rows["line:L"]
    # b's time: planned 100, run 90; total = 3 good at c + 1 scrap at a = 4; ideal 20 x 4 = 80.
    assert (line["planned_s"], line["run_s"], line["good_count"], line["total_count"]) == (100, 90, 3, 4)
    assert line["performance"] == pytest.approx(80 / 90)
    assert line["oee"] == pytest.approx(20 * 3 / 100)  # good x constraint ideal / planned


def test_changes_in_the_same_microsecond_follow_their_previous_links(spark: SparkSession) -> None:
    # Arrival order puts DOWN->RUNNING first; the links say RUNNING->DOWN, then DOWN->RUNNING.
    states = spark.createDataFrame(
        [
            state("m1", 0, "RUNNING", "start"),
            state("m1", 10, "RUNNING", "repaired", "DOWN"),
            state("m1", 10, "DOWN", "jam", "RUNNING"),
        ],
        S.STATES,
    )
    periods, segments = frames(spark, [("p", 0, 20)])
    empty = spark.createDataFrame([], S.PARTS)
    r = by(oee(states, empty, periods, segments).collect(), "scope")["machine:m1"]
    assert (r["run_s"], r["breakdown_s"]) == (20, 0)


def test_downtime_pareto_ranks_causes_across_the_line(spark: SparkSession) -> None:
    states = spark.createDataFrame(
        [
            state("a", 0, "RUNNING", "start"),
            state("a", 10, "DOWN", "jam", "RUNNING"),
            state("a", 40, "RUNNING", "cleared", "DOWN"),
            state("a", 50, "DOWN", "jam", "RUNNING"),
            state("a", 60, "RUNNING", "cleared", "DOWN"),
            state("b", 0, "RUNNING", "start"),
            state("b", 20, "SETUP", "changeover", "RUNNING"),
            state("b", 30, "IDLE", "planned_break", "SETUP"),
        ],
        S.STATES,
    )
    periods, segments = frames(spark, [("p", 0, 100)])
    rows = by(downtime_pareto(states, periods, segments).collect(), "scope", "item")
    jam, setup = rows["machine:a", "DOWN:jam"], rows["machine:b", "SETUP:changeover"]
    # a: jams 10-40 and 50-60 = 40 s in 2 stops; b: SETUP 20-30 = 10 s; the break is planned.
    assert (jam["stops"], jam["downtime_s"], jam["rank"], jam["share"], jam["cumulative_share"]) == (
        2,
        40,
        1,
        0.8,
        0.8,
    )
    assert (setup["stops"], setup["downtime_s"], setup["rank"], setup["cumulative_share"]) == (1, 10, 2, 1.0)
    assert len(rows) == 2


def test_a_failure_counts_where_it_began_and_its_repair_where_it_ended(spark: SparkSession) -> None:
    states = spark.createDataFrame(
        [
            state("m1", 0, "RUNNING", "start"),
            state("m1", 50, "DOWN", "breakdown", "RUNNING"),
            state("m1", 70, "DOWN", "jam", "DOWN"),  # the same failure, another reason
            state("m1", 130, "RUNNING", "repaired", "DOWN"),
            state("m1", 150, "DOWN", "maintenance", "RUNNING"),  # not a failure
            state("m1", 170, "RUNNING", "done", "DOWN"),
        ],
        S.STATES,
    )
    empty = spark.createDataFrame([], S.PARTS)
    periods, segments = frames(spark, [("p1", 0, 100), ("p2", 100, 200)])
    rows = by(reliability(states, empty, periods, segments).collect(), "period")
    p1, p2 = rows["p1"], rows["p2"]
    # p1: one failure began (50 s), run 50 s -> MTBF 50; nothing repaired yet.
    assert (p1["failures"], p1["repairs"], p1["mtbf_s"], p1["mttr_s"], p1["run_s"]) == (1, 0, 50, None, 50)
    # p2: the failure ended at 130 after 80 s -> MTTR 80; run = 100 - 30 (down) - 20 (maintenance).
    assert (p2["failures"], p2["repairs"], p2["repair_s"], p2["mttr_s"], p2["run_s"]) == (0, 1, 80, 80, 50)
    assert p2["availability"] == pytest.approx(0.5)


def test_cycle_time_percentiles_and_scrap_per_family(spark: SparkSession) -> None:
    # Family F: cycles 10, 20, 30, 40 (one scrap); family G: 50.
    parts = spark.createDataFrame(
        [part("m1", i, 8, cycle=c, good=i != 3) for i, c in enumerate((10.0, 20.0, 30.0, 40.0))]
        + [part("m1", 5, 9, cycle=50.0, family="G")],
        S.PARTS,
    )
    periods, _ = frames(spark, [("p", 0, 60)])
    rows = by(cycle_time(parts, periods).collect(), "item")
    f = rows["F"]
    # Exact percentiles (linear): p50 of 10..40 = 25, p25 = 17.5, p95 = 38.5.
    assert (f["parts"], f["good"], f["scrap"], f["scrap_rate"]) == (4, 3, 1, 0.25)
    assert (f["p25_s"], f["p50_s"], f["p95_s"], f["mean_s"], f["ideal_s"]) == (17.5, 25.0, 38.5, 25.0, 8.0)
    assert (rows["all"]["parts"], rows["all"]["max_s"], rows["G"]["parts"]) == (5, 50.0, 1)
