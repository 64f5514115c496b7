"""Energy on a hand-built line: 1-minute periods A (10:00-10:01), B (10:01-10:02) and C (10:05-10:06,
no readings), a reading interval split across A/B, a gap longer than 60 s, a telemetry row without
the power channel, a machine without any, and parts that flow from m1 to m2 (the exit)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobs.spark.energy import energy
from jobs.spark.schema import PARTS, PERIODS, TELEMETRY

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# pyspark 3.5's collect() drops its result socket unclosed (pyspark.rdd._create_local_socket); the
# ResourceWarning surfaces whenever the garbage collector runs, as an unraisable exception.

KEYS = ["line_id", "period", "period_start", "period_end", "scope", "item"]
METRICS = ["energy_kwh", "readings", "mean_power_kw", "good_count", "kwh_per_good_part"]


def at(hhmmss: str) -> datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return datetime(2026, 12, 8, h, m, s, tzinfo=UTC)


def reading(machine: str, t: str, channels: dict[str, float]) -> tuple[Any, ...]:
    return (machine, "L1", "press", at(t), f"{machine}-{t}", channels)


def part(machine: str, t: str, part_id: str, good: bool) -> tuple[Any, ...]:
    return (
        machine,
        "L1",
        at(t),
        f"{machine}-{part_id}",
        part_id,
        "A",
        30.0,
        25.0,
        good,
        None if good else "dim",
    )


def report(spark: SparkSession) -> DataFrame:
    periods = [
        ("L1", "A", "shift", at("10:00:00"), at("10:01:00")),
        ("L1", "B", "shift", at("10:01:00"), at("10:02:00")),
        ("L1", "C", "shift", at("10:05:00"), at("10:06:00")),
    ]
    telemetry = [
        reading("m1", "10:00:00", {"power": 6.0}),  # holds 30 s, in A
        reading("m1", "10:00:30", {"power": 12.0, "temperature": 40.0}),  # holds 40 s: 30 s in A, 10 s in B
        reading("m1", "10:01:10", {"power": 3.6}),  # next power 120 s later: holds 60 s, 50 s of it in B
        reading("m1", "10:01:20", {"temperature": 41.0}),  # no power: ignored
        reading("m1", "10:03:10", {"power": 100.0}),  # the last: holds 0 s (and is in no period)
        reading("m2", "10:00:45", {"power": 2.0}),  # holds 30 s: 15 s in A, 15 s in B
        reading("m2", "10:01:15", {"power": 4.0}),  # the last: holds 0 s
        reading("m3", "10:00:10", {"temperature": 20.0}),  # m3 has no power channel: no row
        reading("m3", "10:00:20", {"power": float("nan")}),
    ]
    parts = [
        part("m1", "10:00:10", "p1", True),
        part("m2", "10:00:40", "p1", True),  # p1 moved on from m1: m1 is not an exit
        part("m1", "10:00:20", "p4", False),
        part("m1", "10:00:50", "p2", True),
        part("m2", "10:01:05", "p2", True),
        part("m1", "10:01:30", "p3", True),  # still in the line
        part("m2", "10:01:40", "p5", False),
    ]
    return energy(
        spark.createDataFrame(telemetry, TELEMETRY),
        spark.createDataFrame(parts, PARTS),
        spark.createDataFrame(periods, PERIODS),
    )


def test_energy(spark: SparkSession) -> None:
    df = report(spark)
    assert df.columns == [*KEYS, *METRICS]
    got = {(r["period"], r["scope"]): [r[m] for m in METRICS] for r in df.collect()}
    assert {r["item"] for r in df.select("item").collect()} == {""}
    assert got == {
        # 6 kW x 30 s + 12 kW x 30 s = 540 kWs = 0.15 kWh over 60 s covered: 9 kW; good p1, p2: 0.15 / 2
        ("A", "machine:m1"): [0.15, 2, 9.0, 2, 0.075],
        # 12 kW x 10 s + 3.6 kW x 50 s (the 60 s cap, minus 10 s past B) = 300 kWs = 0.083333 kWh; 300 / 60
        ("B", "machine:m1"): [0.083333, 1, 5.0, 1, 0.083333],
        ("C", "machine:m1"): [0.0, 0, None, 0, None],
        # 2 kW x 15 s = 30 kWs = 0.008333 kWh; good p1
        ("A", "machine:m2"): [0.008333, 1, 2.0, 1, 0.008333],
        ("B", "machine:m2"): [0.008333, 1, 2.0, 1, 0.008333],  # good p2
        ("C", "machine:m2"): [0.0, 0, None, 0, None],
        # the line: (540 + 30) / 3600 = 0.158333 kWh, 9 + 2 kW; good = m2's (the exit): p1
        ("A", "line:L1"): [0.158333, 3, 11.0, 1, 0.158333],
        # (300 + 30) / 3600 = 0.091667 kWh, 5 + 2 kW; good = p2 at m2 (p3 at m1 is not out yet)
        ("B", "line:L1"): [0.091667, 2, 7.0, 1, 0.091667],
        ("C", "line:L1"): [0.0, 0, None, 0, None],
    }


def test_energy_across_midnight(spark: SparkSession) -> None:
    def t(day: int, hhmmss: str) -> datetime:
        return at(hhmmss).replace(day=day)

    periods = [
        ("L2", "2026-12-08", "day", t(8, "00:00:00"), t(9, "00:00:00")),
        ("L2", "2026-12-09", "day", t(9, "00:00:00"), t(10, "00:00:00")),
        ("L2", "2026-12-08/N", "shift", t(8, "22:00:00"), t(9, "06:00:00")),  # a night shift over midnight
    ]
    telemetry = [
        ("m4", "L2", "oven", t(8, "23:59:40"), "e1", {"power": 36.0}),  # holds 40 s: 20 s each side
        ("m4", "L2", "oven", t(9, "00:00:20"), "e2", {"power": 1.0}),  # the last: 0 s
    ]
    df = energy(
        spark.createDataFrame(telemetry, TELEMETRY),
        spark.createDataFrame([], PARTS),
        spark.createDataFrame(periods, PERIODS),
    )
    got = {(r["period"], r["scope"]): [r[m] for m in METRICS] for r in df.collect()}
    # 36 kW x 20 s = 0.2 kWh on each day; the night shift gets the whole 40 s once: 0.4 kWh
    for scope in ("machine:m4", "line:L2"):
        assert got[("2026-12-08", scope)] == [0.2, 1, 36.0, 0, None]
        assert got[("2026-12-09", scope)] == [0.2, 1, 36.0, 0, None]
        assert got[("2026-12-08/N", scope)] == [0.4, 2, 36.0, 0, None]
    assert len(got) == 6
