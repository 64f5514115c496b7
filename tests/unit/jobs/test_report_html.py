"""jobs.spark.report_html: the CSVs and the self-contained HTML page, from small pandas frames (no Spark).

``report_tables()`` builds a realistic day of a 5-machine line (three shifts A/B/C) whose figures
keep the OEE identities; the browser test draws the same frames.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from jobs.spark.report_html import (
    NO_DATA,
    REPORT_SECTIONS,
    ReportFiles,
    fmt_hm,
    fmt_kwh,
    fmt_pct,
    write_csvs,
    write_report,
)

LINE = "line-1"
MACHINES = ("cnc-1", "press-1", "weld-1", "paint-1", "qc-1")
DAY = "2026-12-08"
DAY_START = datetime(2026, 12, 8, tzinfo=UTC)
SHIFTS = ("A", "B", "C")
SHIFT_S = 8 * 3600
IDEAL_S = {"cnc-1": 42.0, "press-1": 12.0, "weld-1": 30.0, "paint-1": 36.0, "qc-1": 18.0}
FAMILIES = ("bracket", "housing")
REPORT_ARGS: dict[str, Any] = {
    "title": "Line 1: daily analytics",
    "line_ids": [LINE],
    "period_from": DAY_START,
    "period_to": DAY_START + timedelta(days=1),
    "calendar_name": "three-shift (A 06-14, B 14-22, C 22-06)",
    "generated_at": datetime(2026, 12, 9, 1, 30, tzinfo=UTC),
}


def _periods() -> list[tuple[str, str, datetime, datetime]]:
    """(kind, period, start, end): the three shifts, then the day."""
    out = [
        (
            "shift",
            f"{DAY}/{s}",
            DAY_START + timedelta(seconds=i * SHIFT_S),
            DAY_START + timedelta(seconds=(i + 1) * SHIFT_S),
        )
        for i, s in enumerate(SHIFTS)
    ]
    return [*out, ("day", DAY, DAY_START, DAY_START + timedelta(days=1))]


def _key(
    kind: str, period: str, start: datetime, end: datetime, scope: str, item: str = ""
) -> dict[str, Any]:
    return {
        "line_id": LINE,
        "period": period,
        "period_start": pd.Timestamp(start),
        "period_end": pd.Timestamp(end),
        "scope": scope,
        "item": item,
        "kind": kind,
    }


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


OEE_LOSSES = (
    "breakdown_s",
    "maintenance_s",
    "setup_s",
    "idle_s",
    "other_stop_s",
    "starved_s",
    "blocked_s",
    "speed_loss_s",
    "quality_loss_s",
)
OEE_SUMS = (
    "calendar_s",
    "not_scheduled_s",
    "planned_stop_s",
    "unknown_s",
    "planned_s",
    *OEE_LOSSES,
    "run_s",
    "net_productive_s",
    "fully_productive_s",
    "total_count",
    "good_count",
)


def _oee_figures(rng: np.random.Generator, machine: str) -> dict[str, float]:
    planned_stop = 1800.0  # two breaks
    planned = SHIFT_S - planned_stop
    losses = {
        "breakdown_s": float(rng.choice([0, 600, 1500, 2400])) * (2 if machine == "press-1" else 1),
        "maintenance_s": float(rng.choice([0, 0, 900])),
        "setup_s": float(rng.choice([600, 1200])),
        "idle_s": float(rng.integers(0, 900)),
        "other_stop_s": float(rng.integers(0, 300)),
        "starved_s": float(rng.integers(0, 1500)) if machine != "cnc-1" else 0.0,
        "blocked_s": float(rng.integers(0, 900)) if machine != "qc-1" else 0.0,
    }
    run = planned - sum(
        losses[c] for c in ("breakdown_s", "maintenance_s", "setup_s", "idle_s", "other_stop_s")
    )
    ideal = IDEAL_S[machine]
    speed = float(rng.uniform(0.82, 0.95))
    net_before_speed = run - losses["starved_s"] - losses["blocked_s"]
    total = int(net_before_speed * speed // ideal)
    net = total * ideal
    good = total - int(rng.integers(0, max(2, total // 25)))
    return {
        "calendar_s": float(SHIFT_S),
        "not_scheduled_s": 0.0,
        "planned_stop_s": planned_stop,
        "unknown_s": 0.0,
        "planned_s": planned,
        **losses,
        "run_s": run,
        "speed_loss_s": net_before_speed - net,
        "net_productive_s": net,
        "quality_loss_s": (total - good) * ideal,
        "fully_productive_s": good * ideal,
        "total_count": float(total),
        "good_count": float(good),
    }


def _with_ratios(figures: dict[str, float]) -> dict[str, float]:
    planned, run, total = figures["planned_s"], figures["run_s"], figures["total_count"]
    out = dict(figures)
    out["availability"] = run / planned if planned else 0.0
    out["performance"] = figures["net_productive_s"] / run if run else 0.0
    out["quality"] = figures["good_count"] / total if total else 1.0
    out["oee"] = figures["fully_productive_s"] / planned if planned else 0.0
    return out


def _oee(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    shifts = [p for p in _periods() if p[0] == "shift"]
    day = _periods()[-1]
    line_shift: list[dict[str, float]] = []
    for machine in MACHINES:
        per_shift = [_oee_figures(rng, machine) for _ in shifts]
        for period, figures in zip(shifts, per_shift, strict=True):
            rows.append({**_key(*period, f"machine:{machine}"), **_with_ratios(figures)})
        day_figures = {c: sum(f[c] for f in per_shift) for c in OEE_SUMS}
        rows.append({**_key(*day, f"machine:{machine}"), **_with_ratios(day_figures)})
        if machine == "paint-1":  # the line's figures are its constraint's
            line_shift = per_shift
    for period, figures in zip(shifts, line_shift, strict=True):
        rows.append({**_key(*period, f"line:{LINE}"), **_with_ratios(figures)})
    rows.append(
        {**_key(*day, f"line:{LINE}"), **_with_ratios({c: sum(f[c] for f in line_shift) for c in OEE_SUMS})}
    )
    return _frame(rows)


CAUSES = (
    ("cnc-1", "DOWN", "tool_wear"),
    ("cnc-1", "SETUP", "changeover"),
    ("press-1", "DOWN", "jam"),
    ("press-1", "DOWN", "hydraulic_leak"),
    ("press-1", "IDLE", "no_operator"),
    ("weld-1", "DOWN", "wire_feed"),
    ("weld-1", "STARVED", "upstream"),
    ("paint-1", "DOWN", "nozzle_clog"),
    ("paint-1", "SETUP", "colour_change"),
    ("paint-1", "BLOCKED", "downstream"),
    ("qc-1", "IDLE", "no_parts"),
    ("qc-1", "DOWN", "camera_fault"),
    ("cnc-1", "DOWN", "coolant"),
    ("press-1", "SETUP", "die_change"),
    ("weld-1", "IDLE", "waiting_material"),
    ("qc-1", "BLOCKED", "full_bin"),
    ("paint-1", "IDLE", "no_operator"),
)


def _downtime(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for period in _periods():
        kind = period[0]
        scale = 3 if kind == "day" else 1
        for machine, state, reason in CAUSES:
            stops = int(rng.integers(1, 6)) * scale
            rows.append(
                {
                    **_key(*period, f"machine:{machine}", f"{state}:{reason}"),
                    "state": state,
                    "reason": reason,
                    "stops": stops,
                    "downtime_s": float(stops * rng.integers(120, 900)),
                }
            )
    frame = _frame(rows)
    totals = frame.groupby(["period", "scope"])["downtime_s"].transform("sum")
    frame["share"] = frame["downtime_s"] / totals
    frame = frame.sort_values(["period", "scope", "downtime_s"], ascending=[True, True, False])
    frame["cumulative_share"] = frame.groupby(["period", "scope"])["share"].cumsum()
    frame["rank"] = frame.groupby(["period", "scope"]).cumcount() + 1
    return frame.reset_index(drop=True)


def _reliability(oee: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in oee.iterrows():
        failures = round(r["breakdown_s"] / 600)
        repair = float(r["breakdown_s"])
        rows.append(
            {
                **{
                    k: r[k]
                    for k in ("line_id", "period", "period_start", "period_end", "scope", "item", "kind")
                },
                "failures": failures,
                "repairs": failures,
                "run_s": r["run_s"],
                "planned_s": r["planned_s"],
                "repair_s": repair,
                "mtbf_s": r["run_s"] / failures if failures else np.nan,
                "mttr_s": repair / failures if failures else np.nan,
                "availability": r["availability"],
            }
        )
    return _frame(rows)


def _cycle_time(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for period in _periods():
        for machine in MACHINES:
            for family in (*FAMILIES, "all"):
                ideal = IDEAL_S[machine] * (1.15 if family == "housing" else 1.0)
                p50 = ideal * rng.uniform(1.04, 1.15)
                spread = ideal * rng.uniform(0.03, 0.09)
                parts = int(rng.integers(150, 500)) * (3 if period[0] == "day" else 1)
                scrap = int(rng.integers(0, 12))
                rows.append(
                    {
                        **_key(*period, f"machine:{machine}", family),
                        "parts": parts,
                        "good": parts - scrap,
                        "scrap": scrap,
                        "scrap_rate": scrap / parts,
                        "mean_s": p50 + spread * 0.3,
                        "min_s": ideal * 0.97,
                        "p05_s": p50 - 1.6 * spread,
                        "p25_s": p50 - 0.6 * spread,
                        "p50_s": p50,
                        "p75_s": p50 + 0.8 * spread,
                        "p95_s": p50 + 2.4 * spread,
                        "max_s": p50 + 6 * spread,
                        "ideal_s": ideal,
                    }
                )
    return _frame(rows)


ALARM_TYPES = (("overtemp", "high"), ("vibration", "medium"), ("door_open", "low"), ("estop", "critical"))


def _alarms(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for period in _periods():
        for scope in (*(f"machine:{m}" for m in MACHINES), f"line:{LINE}"):
            for alarm_type, severity in ALARM_TYPES:
                raised = int(rng.integers(0, 40)) * (3 if period[0] == "day" else 1)
                rows.append(
                    {
                        **_key(*period, scope, f"{alarm_type}:{severity}"),
                        "alarm_type": alarm_type,
                        "severity": severity,
                        "raised": raised,
                        "acked": int(raised * 0.9),
                        "cleared": raised,
                        "ack_mean_s": float(rng.uniform(20, 240)),
                        "ack_p50_s": float(rng.uniform(15, 120)),
                        "ack_p90_s": float(rng.uniform(200, 600)),
                        "clear_mean_s": float(rng.uniform(60, 900)),
                        "standing": int(rng.integers(0, 3)),
                        "chattering": int(rng.integers(0, 2)),
                    }
                )
    return _frame(rows)


def _alarm_rate(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    operators = 2
    day = _periods()[-1]
    for i in range(144):
        start = DAY_START + timedelta(minutes=10 * i)
        raised = int(rng.poisson(2.5))
        if 60 <= i < 64:  # a flood after a trip at 10:00
            raised = int(rng.integers(22, 40))
        row = {
            **_key(*day, f"line:{LINE}", start.isoformat()),
            "raised": raised,
            "per_operator": raised / operators,
        }
        del row["kind"]
        rows.append(row)
    return _frame(rows)


def _alarm_load(rate: pd.DataFrame) -> pd.DataFrame:
    per = rate["per_operator"]
    row = {
        **_key(*_periods()[-1], f"line:{LINE}"),
        "raised": int(rate["raised"].sum()),
        "operators": 2,
        "intervals": len(rate),
        "per_10min_mean": float(per.mean()),
        "per_10min_peak": float(per.max()),
        "share_acceptable": float((per <= 1).mean()),
        "share_manageable": float(((per > 1) & (per <= 2)).mean()),
        "share_flood": float((per >= 10).mean()),
        "floods": 1,
        "top10_share": 0.62,
        "standing": 3,
        "chattering": 2,
    }
    del row["kind"]
    return _frame([row])


def _anomalies(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for period in _periods():
        for machine in MACHINES:
            for detector in ("half_space_trees", "zscore"):
                count = int(rng.integers(0, 12)) * (3 if period[0] == "day" else 1)
                rows.append(
                    {
                        **_key(*period, f"machine:{machine}", detector),
                        "count": count,
                        "mean_score": float(rng.uniform(0.6, 0.95)) if count else np.nan,
                    }
                )
    return _frame(rows)


def _energy(rng: np.random.Generator, oee: pd.DataFrame) -> pd.DataFrame:
    rows = []
    power = {"cnc-1": 22.0, "press-1": 45.0, "weld-1": 30.0, "paint-1": 38.0, "qc-1": 4.0}
    for _, r in oee.iterrows():
        scope = str(r["scope"])
        if scope.startswith("line:"):
            continue
        kw = power[scope.split(":")[1]] * rng.uniform(0.9, 1.1)
        hours = (r["period_end"] - r["period_start"]).total_seconds() / 3600
        kwh = kw * hours * r["run_s"] / r["calendar_s"]
        rows.append(
            {
                **{
                    k: r[k]
                    for k in ("line_id", "period", "period_start", "period_end", "scope", "item", "kind")
                },
                "energy_kwh": kwh,
                "readings": int(hours * 360),
                "mean_power_kw": kw,
                "good_count": r["good_count"],
                "kwh_per_good_part": kwh / r["good_count"] if r["good_count"] else np.nan,
            }
        )
    return _frame(rows)


def _schedule() -> pd.DataFrame:
    rows = []
    for period in _periods():
        n = 3 if period[0] == "day" else 1
        base = {"requests": 0, "plans": 0, "unanswered": 0, "feasible": 0, "chosen": 0, "share": np.nan}
        items: dict[str, dict[str, Any]] = {
            "": {
                "requests": 12 * n,
                "plans": 34 * n,
                "unanswered": 1 * n,
                "feasible": 33 * n,
                "chosen": 11 * n,
            },
            "solver:cp_sat": {
                "requests": 12 * n,
                "plans": 12 * n,
                "feasible": 12 * n,
                "chosen": 7 * n,
                "mean_solve_ms": 850.0,
                "mean_gap": 0.0,
            },
            "solver:qaoa": {
                "requests": 11 * n,
                "plans": 11 * n,
                "feasible": 10 * n,
                "chosen": 1 * n,
                "mean_solve_ms": 4200.0,
                "mean_gap": 0.08,
            },
            "solver:annealing": {
                "requests": 11 * n,
                "plans": 11 * n,
                "feasible": 11 * n,
                "chosen": 3 * n,
                "mean_solve_ms": 320.0,
                "mean_gap": 0.03,
            },
            "trigger:breakdown": {"requests": 5 * n, "plans": 14 * n, "chosen": 5 * n},
            "trigger:shift_start": {"requests": 7 * n, "plans": 20 * n, "chosen": 6 * n},
        }
        for item, values in items.items():
            row: dict[str, Any] = {**_key(*period, f"line:{LINE}", item), **base}
            row |= {"mean_solve_ms": np.nan, "mean_gap": np.nan}
            row.update(values)
            rows.append(row)
    return _frame(rows)


def report_tables(seed: int = 7) -> dict[str, pd.DataFrame]:
    """One day (three shifts) of a 5-machine line, every report table."""
    rng = np.random.default_rng(seed)
    oee = _oee(rng)
    rate = _alarm_rate(rng)
    return {
        "oee": oee,
        "downtime": _downtime(rng),
        "reliability": _reliability(oee),
        "cycle_time": _cycle_time(rng),
        "alarms": _alarms(rng),
        "alarm_rate": rate,
        "alarm_load": _alarm_load(rate),
        "anomalies": _anomalies(rng),
        "energy": _energy(rng, oee),
        "schedule": _schedule(),
    }


def _sections(page: str) -> dict[str, str]:
    """section id -> its HTML."""
    found = re.findall(r'<section id="([^"]+)"[^>]*>(.*?)</section>', page, flags=re.S)
    return dict(found)


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return report_tables()


@pytest.fixture(scope="module")
def report(tables: dict[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    return write_report(tables, tmp_path_factory.mktemp("report"), **REPORT_ARGS)


def test_fixture_keeps_the_oee_identities(tables: dict[str, pd.DataFrame]) -> None:
    oee = tables["oee"]
    stops = oee[["breakdown_s", "maintenance_s", "setup_s", "idle_s", "other_stop_s"]].sum(axis=1)
    assert np.allclose(oee["planned_s"] - stops, oee["run_s"])
    assert np.allclose(
        oee["run_s"] - oee[["starved_s", "blocked_s", "speed_loss_s"]].sum(axis=1), oee["net_productive_s"]
    )
    assert np.allclose(oee["net_productive_s"] - oee["quality_loss_s"], oee["fully_productive_s"])
    assert np.allclose(oee["oee"], oee["fully_productive_s"] / oee["planned_s"])
    assert (
        (
            (oee[["availability", "performance", "quality", "oee"]] >= 0)
            & (oee[["availability", "performance", "quality", "oee"]] <= 1)
        )
        .all()
        .all()
    )


def test_writes_one_csv_per_table_and_the_page(report: ReportFiles, tables: dict[str, pd.DataFrame]) -> None:
    assert report.html.name == "report.html" and report.html.is_file()
    assert set(report.csvs) == set(tables)
    for name, path in report.csvs.items():
        assert path == report.html.parent / f"{name}.csv" and path.is_file()
    assert set(report.all) == {report.html, *report.csvs.values()}


def test_csv_round_trips_sorted_by_keys(report: ReportFiles, tables: dict[str, pd.DataFrame]) -> None:
    for name, frame in tables.items():
        back = pd.read_csv(report.csvs[name], keep_default_na=False, na_values=[""])
        assert list(back.columns) == list(frame.columns), name
        keys = [
            k for k in ("line_id", "period_start", "period", "kind", "scope", "item") if k in frame.columns
        ]
        expected = frame.sort_values(keys, kind="mergesort").reset_index(drop=True)
        assert len(back) == len(expected), name
        for column in frame.columns:
            got, want = back[column], expected[column]
            if column in ("period_start", "period_end"):
                assert (pd.to_datetime(got, utc=True) == want).all(), (name, column)
            elif pd.api.types.is_numeric_dtype(want):
                assert np.allclose(got.astype(float), want.astype(float), rtol=1e-9, equal_nan=True), (
                    name,
                    column,
                )
            else:
                assert (got.fillna("").astype(str) == want.fillna("").astype(str)).all(), (name, column)


def test_csv_is_stable(tables: dict[str, pd.DataFrame], report: ReportFiles, tmp_path: Path) -> None:
    shuffled = {name: frame.sample(frac=1.0, random_state=3) for name, frame in tables.items()}
    again = write_csvs(shuffled, tmp_path)
    for name in tables:
        assert again[name].read_bytes() == report.csvs[name].read_bytes(), name
    text = report.csvs["oee"].read_text()
    assert "2026-12-08T00:00:00Z" in text and "e+" not in text


def test_page_is_deterministic(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    one = {"energy": tables["energy"]}  # one small chart is enough: the SVG ids are what could vary
    first = write_report(one, tmp_path / "1", **REPORT_ARGS).html.read_text()
    shuffled = {"energy": tables["energy"].sample(frac=1.0, random_state=5)}
    assert write_report(shuffled, tmp_path / "2", **REPORT_ARGS).html.read_text() == first


def test_page_is_self_contained(report: ReportFiles) -> None:
    page = report.html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, flags=re.I)
    assert not re.search(r"<script|<link|@import|url\((?!#)|<img|<iframe", page, flags=re.I)
    assert "<style>" in page and "@media print" in page


def test_header_names_line_period_calendar_and_generation(report: ReportFiles) -> None:
    page = report.html.read_text(encoding="utf-8")
    header = page[page.index("<header>") : page.index("</header>")]
    assert "Line 1: daily analytics" in header
    assert LINE in header
    assert "2026-12-08 00:00 UTC" in header and "2026-12-09 00:00 UTC" in header
    assert "three-shift (A 06-14, B 14-22, C 22-06)" in header
    assert "2026-12-09 01:30 UTC" in header


@pytest.mark.parametrize(("section", "heading"), REPORT_SECTIONS)
def test_every_section_has_its_heading_a_chart_and_how_to_read_it(
    report: ReportFiles, section: str, heading: str
) -> None:
    body = _sections(report.html.read_text(encoding="utf-8"))[section]
    assert f"<h2>{heading}</h2>".replace("&", "&amp;") in body
    assert NO_DATA not in body
    assert re.search(r"<svg[^>]*data-chart=", body), "no embedded chart"
    assert body.count("How to read this:") == body.count("<figure")


def test_charts_are_inline_svg_scaled_by_css(report: ReportFiles) -> None:
    page = report.html.read_text(encoding="utf-8")
    charts = re.findall(r'<figure class="chart" id="([^"]+)" data-chart="([^"]+)"', page)
    assert [c for _, c in charts] == [
        "oee-trend",
        "waterfall",
        "pareto",
        "reliability",
        "alarm-rate",
        "cycle-time",
        "energy",
        "schedule",
        "anomalies",
    ]
    assert "chart-losses-line-1" in dict(charts)
    for svg in re.findall(r"<svg[^>]*>", page):
        assert "viewBox" in svg and " width=" not in svg and " height=" not in svg
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page


def test_tables_carry_units(report: ReportFiles) -> None:
    sections = _sections(report.html.read_text(encoding="utf-8"))
    assert re.search(r"<td class=num>\d+\.\d %</td>", sections["oee"])  # ratios as %
    assert re.search(r"<td class=num>\d+:\d\d</td>", sections["losses"])  # durations as h:mm
    assert re.search(r"<td class=num>[\d,]+\.\d+ kWh</td>", sections["energy"])
    assert "Outside planned time" in sections["losses"] and "planned stops 1:30" in sections["losses"]


def test_oee_trend_uses_shifts_and_falls_back_to_days(
    report: ReportFiles, tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    oee_section = _sections(report.html.read_text())["oee"]
    assert all(f"{DAY}/{s}" in oee_section for s in SHIFTS) and "days are shown" not in oee_section
    days_only = {"oee": tables["oee"][tables["oee"]["kind"] == "day"]}
    page = write_report(days_only, tmp_path, **REPORT_ARGS).html.read_text()
    oee_section = _sections(page)["oee"]
    assert "days are shown" in oee_section and f"<td>{DAY}</td>" in oee_section
    assert 'data-chart="waterfall"' in _sections(page)["losses"]  # the waterfall sums day rows


def test_waterfall_sums_the_day_rows(report: ReportFiles, tables: dict[str, pd.DataFrame]) -> None:
    day = tables["oee"][(tables["oee"]["scope"] == f"line:{LINE}") & (tables["oee"]["kind"] == "day")].iloc[0]
    losses = _sections(report.html.read_text())["losses"]
    assert f"<td class=num>{fmt_hm(day['planned_s'])}</td>" in losses
    assert f"<td class=num>{fmt_hm(day['fully_productive_s'])}</td>" in losses
    assert f"<td class=num>{fmt_pct(day['oee'])}</td>" in losses


def test_pareto_and_reliability_aggregate_the_range(
    report: ReportFiles, tables: dict[str, pd.DataFrame]
) -> None:
    sections = _sections(report.html.read_text())
    down = tables["downtime"][tables["downtime"]["kind"] == "day"].sort_values("downtime_s", ascending=False)
    first = down.iloc[0]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", sections["downtime"])
    assert rows[0] == (first["scope"].split(":")[1], first["state"], first["reason"])
    assert len(rows) == 15  # top 15 of 17 causes
    rel = tables["reliability"]
    press = rel[(rel["scope"] == "machine:press-1") & (rel["kind"] == "day")].iloc[0]
    mttr = fmt_hm(press["repair_s"] / press["repairs"]) if press["repairs"] else "—"
    assert re.search(
        rf"<td>press-1</td><td class=num>{int(press['failures'])}</td>.*?<td class=num>{mttr}</td>",
        sections["reliability"],
    )


def test_energy_per_good_part(report: ReportFiles, tables: dict[str, pd.DataFrame]) -> None:
    energy = tables["energy"]
    cnc = energy[(energy["scope"] == "machine:cnc-1") & (energy["kind"] == "day")].iloc[0]
    assert fmt_kwh(cnc["energy_kwh"] / cnc["good_count"], 3) in _sections(report.html.read_text())["energy"]


EMPTY_CASES: dict[str, Callable[[pd.DataFrame], pd.DataFrame | None]] = {
    "missing": lambda frame: None,
    "empty": lambda frame: frame.iloc[0:0],
    "no_columns": lambda frame: pd.DataFrame(),
    "other_line": lambda frame: frame.assign(line_id="line-9"),
}


@pytest.mark.parametrize("case", sorted(EMPTY_CASES))
def test_missing_or_empty_tables_say_no_data(
    tables: dict[str, pd.DataFrame], tmp_path: Path, case: str
) -> None:
    changed = {name: EMPTY_CASES[case](frame) for name, frame in tables.items()}
    kept = {name: frame for name, frame in changed.items() if frame is not None}
    files = write_report(kept, tmp_path, **REPORT_ARGS)
    sections = _sections(files.html.read_text())
    assert set(sections) == {s for s, _ in REPORT_SECTIONS}
    for section, body in sections.items():
        assert NO_DATA in body, section
        assert "<svg" not in body, section
    assert set(files.csvs) == set(kept)


def test_one_table_missing_leaves_the_others(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    partial = {k: tables[k] for k in ("energy", "alarm_load", "alarms")}
    partial["downtime"] = tables["downtime"].drop(columns=["downtime_s"])  # unreadable, not fatal
    partial["cycle_time"] = tables["cycle_time"].drop(columns=["p50_s"])
    sections = _sections(write_report(partial, tmp_path, **REPORT_ARGS).html.read_text())
    for gone in ("oee", "losses", "schedule", "anomalies", "downtime", "reliability", "cycle-time"):
        assert NO_DATA in sections[gone] and "<svg" not in sections[gone], gone
    alarms = sections["alarms"]  # no rate chart, but the summary and the top alarms
    assert alarms.count(NO_DATA) == 1 and "<svg" not in alarms and "<td>line-1</td>" in alarms
    assert "<td>overtemp</td>" in alarms
    assert NO_DATA not in sections["energy"] and "<svg" in sections["energy"]


def test_a_machine_without_failures_and_a_line_without_planned_time(
    tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    rel = tables["reliability"].assign(failures=0, repairs=0, repair_s=0.0)
    oee = tables["oee"][tables["oee"]["kind"] == "day"].assign(planned_s=0.0)
    sections = _sections(
        write_report({"reliability": rel, "oee": oee}, tmp_path, **REPORT_ARGS).html.read_text()
    )
    assert "no failures" in sections["reliability"]
    assert NO_DATA in sections["losses"] and "no planned time" in sections["losses"]


def test_formatting() -> None:
    assert fmt_hm(0) == "0:00" and fmt_hm(59 * 60 + 31) == "1:00" and fmt_hm(float("nan")) == "—"
    assert fmt_pct(0.5) == "50.0 %" and fmt_pct(None) == "—"
    assert fmt_kwh(12.345, 2) == "12.35 kWh"
