"""Alarm reports on a hand-built line: three periods (A 10:00-11:00, B 11:00-11:25 with a short last
10-minute interval, C 11:25-11:45 without alarms), a chattering burst, one across the A/B boundary,
standing alarms around the 24 h limit and alarms never acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from jobs.spark.alarms import alarm_load, alarm_rate, alarm_stats, anomaly_counts
from jobs.spark.schema import ALARMS, ANOMALIES, PERIODS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# pyspark 3.5's collect() drops its result socket unclosed (pyspark.rdd._create_local_socket); the
# ResourceWarning surfaces whenever the garbage collector runs, as an unraisable exception.

KEYS = ["line_id", "period", "period_start", "period_end", "scope", "item"]


def at(hhmmss: str, day: int = 8) -> datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return datetime(2026, 12, day, h, m, s, tzinfo=UTC)


def secs(t: datetime, s: float) -> datetime:
    return t + timedelta(seconds=s)


@pytest.fixture
def periods(spark: SparkSession) -> DataFrame:
    rows = [
        ("L1", "A", "shift", at("10:00:00"), at("11:00:00")),
        ("L1", "B", "shift", at("11:00:00"), at("11:25:00")),
        ("L1", "C", "shift", at("11:25:00"), at("11:45:00")),
    ]
    return spark.createDataFrame(rows, PERIODS)


def alarm(
    aid: str,
    machine: str,
    kind: str,
    severity: str,
    start: datetime,
    ack: datetime | None = None,
    clear: datetime | None = None,
    line: str = "L1",
) -> tuple[Any, ...]:
    status = "CLEARED_ACK" if clear and ack else "CLEARED_UNACK" if clear else "ACTIVE_UNACK"
    return (aid, machine, line, kind, f"rule-{kind}", severity, status, start, None, ack, None, clear, None)


@pytest.fixture
def alarms(spark: SparkSession) -> DataFrame:
    a1 = at("10:00:00")  # exactly period A's start: in A
    a2 = at("10:00:20")
    a3 = at("10:00:50")
    a4 = at("10:30:00")
    rows = [
        # m1 OverTemp: a1-a3 within 50 s, a burst (chattering); a3 never acknowledged
        alarm("a1", "m1", "OverTemp", "MAJOR", a1, ack=secs(a1, 60), clear=secs(a1, 300)),
        alarm("a2", "m1", "OverTemp", "MAJOR", a2, ack=secs(a2, 120)),
        alarm("a3", "m1", "OverTemp", "MAJOR", a3, clear=secs(a3, 60)),
        # escalated to CRITICAL: its own item; 29 min after a3, no burst
        alarm("a4", "m1", "OverTemp", "CRITICAL", a4, ack=secs(a4, 600), clear=secs(a4, 900)),
        # m2 Vib: a9 (A), a5 at exactly 11:00 (B), a10 (B): 40 s apart, a burst across A/B
        alarm("a9", "m2", "Vib", "MINOR", at("10:59:30")),
        alarm("a5", "m2", "Vib", "MINOR", at("11:00:00")),
        alarm("a10", "m2", "Vib", "MINOR", at("11:00:10"), ack=at("11:00:40")),
        # standing candidates, raised the day before
        alarm("a6", "m2", "Vib", "MINOR", at("09:00:00", day=7)),  # 26 h old at 11:00: standing A, B, C
        alarm("a7", "m2", "Vib", "MINOR", at("10:30:00", day=7), clear=at("11:10:00")),  # standing A only
        alarm("a8", "m2", "Vib", "MINOR", at("11:00:00", day=7)),  # exactly 24 h at 11:00: not in A; B, C
        # another line: never in L1's figures
        alarm("x1", "m9", "Vib", "MINOR", at("10:05:00"), line="L2"),
    ]
    return spark.createDataFrame(rows, ALARMS)


def by_key(df: DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    assert df.columns[:6] == KEYS
    out = {}
    for row in df.collect():
        d = row.asDict()
        out[(d["period"], d["scope"], d["item"])] = d
    return out


def metrics(d: dict[str, Any], names: list[str]) -> list[Any]:
    return [d[n] for n in names]


STATS = [
    "raised",
    "acked",
    "cleared",
    "ack_mean_s",
    "ack_p50_s",
    "ack_p90_s",
    "clear_mean_s",
    "standing",
    "chattering",
]


def test_alarm_stats(alarms: DataFrame, periods: DataFrame) -> None:
    df = alarm_stats(alarms, periods)
    assert df.columns == [*KEYS, *STATS, "alarm_type", "severity"]
    got = by_key(df)
    assert set(got) == {
        ("A", "machine:m1", "OverTemp:MAJOR"),
        ("A", "machine:m1", "OverTemp:CRITICAL"),
        ("A", "machine:m2", "Vib:MINOR"),
        ("B", "machine:m2", "Vib:MINOR"),
        ("C", "machine:m2", "Vib:MINOR"),  # nothing raised, but a6 and a8 stand
    }
    # a1-a3: acked a1 (60 s), a2 (120 s): mean 90, p50 90, p90 60 + 0.9 x 60 = 114;
    # cleared a1 (300 s), a3 (60 s): mean 180; a2 is active but only 40 min old; all three chatter
    assert metrics(got[("A", "machine:m1", "OverTemp:MAJOR")], STATS) == [
        3,
        2,
        2,
        90.0,
        90.0,
        114.0,
        180.0,
        0,
        3,
    ]
    a4 = got[("A", "machine:m1", "OverTemp:CRITICAL")]
    assert metrics(a4, STATS) == [1, 1, 1, 600.0, 600.0, 600.0, 900.0, 0, 0]
    assert (a4["alarm_type"], a4["severity"]) == ("OverTemp", "CRITICAL")
    # a9 raised, never acked nor cleared; standing a6 (26 h) and a7 (24.5 h, cleared after 11:00);
    # a8 is exactly 24 h old (not more); a9 is in the a9/a5/a10 burst
    assert metrics(got[("A", "machine:m2", "Vib:MINOR")], STATS) == [1, 0, 0, None, None, None, None, 2, 1]
    # a5 (exactly 11:00) and a10 (acked after 30 s); standing a6 and a8 (24 h 25 min), a7 cleared 11:10
    assert metrics(got[("B", "machine:m2", "Vib:MINOR")], STATS) == [2, 1, 0, 30.0, 30.0, 30.0, None, 2, 2]
    assert metrics(got[("C", "machine:m2", "Vib:MINOR")], STATS) == [0, 0, 0, None, None, None, None, 2, 0]


LOAD = [
    "raised",
    "operators",
    "intervals",
    "per_10min_mean",
    "per_10min_peak",
    "share_acceptable",
    "share_manageable",
    "share_flood",
    "floods",
    "top10_share",
    "standing",
    "chattering",
]


def test_alarm_load(alarms: DataFrame, periods: DataFrame) -> None:
    df = alarm_load(alarms, periods)
    assert df.columns == [*KEYS, *LOAD]
    got = by_key(df)
    assert set(got) == {(p, "line:L1", "") for p in "ABC"}
    # A: 6 intervals with 3 (a1-a3), 0, 0, 1 (a4), 0, 1 (a9): mean 5/6, peak 3;
    # <= 1: 5 of 6 = 0.833333333, <= 2: 5 of 6; two (machine, type) pairs, both in the top 10
    assert metrics(got[("A", "line:L1", "")], LOAD) == [
        5, 1, 6, 0.833333, 3, 0.833333333, 0.833333333, 0.0, 0, 1.0, 2, 4
    ]  # fmt: skip
    # B: 11:00, 11:10, 11:20 (5 min): 2 (a5, a10), 0, 0: mean 2/3; <= 1: 2 of 3; <= 2: all
    assert metrics(got[("B", "line:L1", "")], LOAD) == [
        2, 1, 3, 0.666667, 2, 0.666666667, 1.0, 0.0, 0, 1.0, 2, 2
    ]  # fmt: skip
    # C: no alarms: two zero intervals, no top-10 share, a6 and a8 still stand
    assert metrics(got[("C", "line:L1", "")], LOAD) == [0, 1, 2, 0.0, 0, 1.0, 1.0, 0.0, 0, None, 2, 0]


def test_alarm_load_flood_and_operators(spark: SparkSession) -> None:
    periods = spark.createDataFrame([("L1", "A", "shift", at("10:00:00"), at("11:00:00"))], PERIODS)
    # 12 alarms from 12 machines in the first interval, 1 in the second
    rows = [alarm(f"f{i}", f"m{i:02d}", "Jam", "MAJOR", at(f"10:0{i // 2}:0{i % 2}")) for i in range(12)]
    rows.append(alarm("g", "m00", "Jam", "MAJOR", at("10:15:00")))
    alarms = spark.createDataFrame(rows, ALARMS)
    # one query for both staffing levels (Spark reuses the shared stages)
    both = alarm_load(alarms, periods).unionByName(alarm_load(alarms, periods, operators=2)).collect()
    one, two = sorted((r.asDict() for r in both), key=lambda d: d["operators"])
    # intervals: 12, 1, 0, 0, 0, 0; 12 > 10: one flood = 1/6 = 0.166666667; <= 1: 5 of 6; <= 2: 5 of 6;
    # top 10 pairs: (m00, Jam) with 2, nine with 1: 11 of 13 = 0.846154
    assert metrics(one, LOAD) == [
        13,
        1,
        6,
        2.166667,
        12,
        0.833333333,
        0.833333333,
        0.166666667,
        1,
        0.846154,
        0,
        0,
    ]
    # 2 operators: a flood needs > 20, acceptable <= 2 (5 of 6), manageable <= 4 (5 of 6)
    assert metrics(two, LOAD) == [13, 2, 6, 2.166667, 12, 0.833333333, 0.833333333, 0.0, 0, 0.846154, 0, 0]
    with pytest.raises(ValueError, match="operators"):
        alarm_load(alarms, periods, operators=0)


def test_alarm_rate(spark: SparkSession, alarms: DataFrame, periods: DataFrame) -> None:
    df = alarm_rate(alarms, periods, operators=2)
    assert df.columns == [*KEYS, "raised", "per_operator"]
    got = {(k[0], k[2]): metrics(d, ["raised", "per_operator"]) for k, d in by_key(df).items()}
    assert len(got) == 6 + 3 + 2  # every 10-minute interval, zeros included
    assert got[("A", "2026-12-08T10:00:00Z")] == [3, 1.5]
    assert got[("A", "2026-12-08T10:10:00Z")] == [0, 0.0]
    assert got[("A", "2026-12-08T10:50:00Z")] == [1, 0.5]  # a9 at 10:59:30
    assert got[("B", "2026-12-08T11:00:00Z")] == [2, 1.0]
    assert got[("B", "2026-12-08T11:20:00Z")] == [0, 0.0]  # the short last interval
    assert sorted(k[1] for k in got if k[0] == "C") == ["2026-12-08T11:25:00Z", "2026-12-08T11:35:00Z"]
    # the item is UTC text whatever the session's time zone
    zone = str(spark.conf.get("spark.sql.session.timeZone"))
    spark.conf.set("spark.sql.session.timeZone", "Europe/Berlin")
    try:
        items = {r["item"] for r in alarm_rate(alarms, periods).where("period = 'C'").collect()}
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert items == {"2026-12-08T11:25:00Z", "2026-12-08T11:35:00Z"}


def test_anomaly_counts(spark: SparkSession, periods: DataFrame) -> None:
    rows = [
        ("m1", "L1", at("10:10:00"), "e1", "robust-z", 4.0, 3.0),
        ("m1", "L1", at("10:59:59"), "e2", "robust-z", 6.0, 3.0),
        ("m1", "L1", at("11:00:00"), "e3", "robust-z", 3.0, 3.0),  # B
        ("m1", "L1", at("10:20:00"), "e4", "pca", None, 1.0),
        ("m1", "L1", at("12:00:00"), "e5", "pca", 9.0, 1.0),  # after every period
    ]
    df = anomaly_counts(spark.createDataFrame(rows, ANOMALIES), periods)
    assert df.columns == [*KEYS, "count", "mean_score"]
    got = {k: metrics(d, ["count", "mean_score"]) for k, d in by_key(df).items()}
    assert got == {
        ("A", "machine:m1", "robust-z"): [2, 5.0],  # (4 + 6) / 2
        ("A", "machine:m1", "pca"): [1, None],
        ("B", "machine:m1", "robust-z"): [1, 3.0],
    }
