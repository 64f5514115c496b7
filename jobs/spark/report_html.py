"""The analytics report as files: one CSV per report table and one self-contained ``report.html``.

``write_report`` takes the report tables as pandas DataFrames (one per report name: ``oee``,
``downtime``, ``reliability``, ``cycle_time``, ``alarms``, ``alarm_load``, ``alarm_rate``,
``anomalies``, ``energy``, ``schedule``), keyed by ``line_id``, ``period``, ``period_start``,
``period_end``, ``scope`` (``machine:<id>`` or ``line:<id>``) and ``item``. Tables with a ``kind``
column hold day and shift rows; range totals sum the day rows only.

The HTML page needs nothing from the network: the charts are matplotlib SVGs inlined in the page
(no pyplot, so no GUI backend and no global figure state), the CSS is inline and uses the system's
fonts, and there is no JavaScript. Any table may be missing or empty: its section then says
"No data for this period." instead of a chart.

>>> fmt_hm(3725.0), fmt_pct(0.8534), fmt_kwh(1234.5)
('1:02', '85.3 %', '1,234.5 kWh')
"""

from __future__ import annotations

import functools
import html
import io
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

__all__ = ["REPORT_SECTIONS", "ReportFiles", "fmt_hm", "fmt_kwh", "fmt_pct", "write_csvs", "write_report"]

log = logging.getLogger(__name__)

KEYS = ("line_id", "period", "period_start", "period_end", "scope", "item")
SORT_KEYS = ("line_id", "period_start", "period", "kind", "scope", "item")
FLOAT_FORMAT = "%.10g"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
NO_DATA = "No data for this period."
MINUS, TIMES, DASH = "\u2212", "\u00d7", "\u2013"  # typographic minus, multiplication sign, en dash

REPORT_SECTIONS: tuple[tuple[str, str], ...] = (
    ("oee", "OEE trend"),
    ("losses", "Loss waterfall"),
    ("downtime", "Downtime Pareto"),
    ("reliability", "Reliability: MTBF and MTTR"),
    ("alarms", "Alarm load vs ISA-18.2"),
    ("cycle-time", "Cycle times"),
    ("energy", "Energy per good part"),
    ("schedule", "Schedule record"),
    ("anomalies", "Anomalies"),
)
"""(section id, heading) in page order."""

# Colour-blind-safe (Okabe-Ito) with enough contrast on white and in greyscale print.
BLUE, ORANGE, GREEN, RED, PURPLE, SKY, YELLOW, GREY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#7f7f7f",
)
STATE_COLOURS = {"DOWN": RED, "SETUP": ORANGE, "IDLE": SKY, "STARVED": PURPLE, "BLOCKED": GREEN}
RC: dict[Any, Any] = {
    "font.size": 9.0,
    "axes.titlesize": 11.0,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "svg.fonttype": "path",  # glyphs as paths: the page needs no font
    "svg.hashsalt": "factory-twin-report",  # stable ids, so the same data gives the same file
}


@dataclass(frozen=True)
class ReportFiles:
    """What ``write_report`` wrote: the page and one CSV per report table (by report name)."""

    html: Path
    csvs: Mapping[str, Path] = field(default_factory=dict)

    @property
    def all(self) -> list[Path]:
        return [self.html, *self.csvs.values()]


# ---------------------------------------------------------------- formatting


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) or math.isinf(x) else x


def fmt_hm(seconds: Any) -> str:
    """Seconds as ``h:mm`` (rounded to the minute); ``—`` for none."""
    x = _num(seconds)
    if x is None:
        return "—"
    minutes = round(abs(x) / 60)
    return f"{'-' if x < 0 else ''}{minutes // 60}:{minutes % 60:02d}"


def fmt_pct(ratio: Any, digits: int = 1) -> str:
    x = _num(ratio)
    return "—" if x is None else f"{x * 100:.{digits}f} %"


def fmt_kwh(kwh: Any, digits: int = 1) -> str:
    x = _num(kwh)
    return "—" if x is None else f"{x:,.{digits}f} kWh"


def fmt_s(seconds: Any, digits: int = 1) -> str:
    x = _num(seconds)
    return "—" if x is None else f"{x:,.{digits}f} s"


def fmt_int(value: Any) -> str:
    x = _num(value)
    return "—" if x is None else f"{round(x):,d}"


def fmt_float(value: Any, digits: int = 2, unit: str = "") -> str:
    x = _num(value)
    return "—" if x is None else f"{x:,.{digits}f}{' ' + unit if unit else ''}"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _when(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _entity(scope: str) -> str:
    """``machine:cnc-1`` -> ``cnc-1``."""
    return scope.split(":", 1)[1] if ":" in scope else scope


def _line_name(line: str) -> str:
    """``line-1`` stays; ``L1`` becomes ``line L1``."""
    return line if line.lower().startswith("line") else f"line {line}"


def _div(a: Any, b: Any) -> float | None:
    x, y = _num(a), _num(b)
    return None if x is None or y is None or y == 0 else x / y


# ---------------------------------------------------------------- CSV


def _safe_name(report: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", report).strip("._") or "report"


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert("UTC")
    keys = [k for k in SORT_KEYS if k in out.columns]
    if keys and len(out):
        out = out.sort_values(keys, kind="mergesort", na_position="last")
    return out.reset_index(drop=True)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    _csv_frame(frame).to_csv(
        path, index=False, float_format=FLOAT_FORMAT, date_format=DATE_FORMAT, lineterminator="\n"
    )


# ---------------------------------------------------------------- selecting rows


class _Tables:
    """The input tables restricted to the report's lines, with the helpers every section uses."""

    def __init__(self, tables: Mapping[str, pd.DataFrame | None], line_ids: Sequence[str]) -> None:
        self.tables = tables
        self.line_ids = list(line_ids)

    def get(self, name: str, *columns: str) -> pd.DataFrame | None:
        """Rows of ``name`` for the report's lines, or None when missing, empty or lacking a column."""
        frame = self.tables.get(name)
        if frame is None or not isinstance(frame, pd.DataFrame) or frame.empty:
            return None
        if any(c not in frame.columns for c in (*columns, "scope")):
            log.warning("report table %s lacks some of %s: shown as no data", name, columns)
            return None
        if self.line_ids and "line_id" in frame.columns:
            frame = frame[frame["line_id"].isin(self.line_ids)]
        frame = frame.assign(scope=frame["scope"].fillna("").astype(str))
        if "item" in frame.columns:
            frame = frame.assign(item=frame["item"].fillna("").astype(str))
        return None if frame.empty else frame

    def days(self, name: str, *columns: str) -> pd.DataFrame | None:
        """The day rows (all rows when the table has no ``kind``)."""
        frame = self.get(name, *columns)
        if frame is not None and "kind" in frame.columns:
            frame = frame[frame["kind"] == "day"]
        return None if frame is None or frame.empty else frame

    @staticmethod
    def machines(frame: pd.DataFrame) -> pd.DataFrame | None:
        """Machine-scope rows, or the line-scope rows when there are none."""
        machine = frame[frame["scope"].str.startswith("machine:")]
        if machine.empty:
            machine = frame[frame["scope"].str.startswith("line:")]
        return None if machine.empty else machine

    def lines(self) -> list[str]:
        if self.line_ids:
            return self.line_ids
        found: set[str] = set()
        for frame in self.tables.values():
            if isinstance(frame, pd.DataFrame) and "line_id" in frame.columns:
                found.update(str(x) for x in frame["line_id"].dropna().unique())
        return sorted(found)

    def label(self, frame: pd.DataFrame) -> pd.Series:
        """A row's machine (``cnc-1``), prefixed with its line when the report has several."""
        names = frame["scope"].map(_entity)
        if len(self.lines()) > 1 and "line_id" in frame.columns:
            names = frame["line_id"].astype(str) + "/" + names
        return names


# ---------------------------------------------------------------- charts


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Any, chart: str, alt: str) -> str:
    """The figure as an inline ``<svg>`` that scales with the page (no XML prolog, no fixed size)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    head_end = text.index(">")
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    head += f' role="img" aria-label="{html.escape(alt)}" class="chart-svg" data-chart="{chart}"'
    return head + text[head_end:]


def _chart(chart: str, fig: Any, alt: str, how: str, element_id: str) -> str:
    svg = _svg(fig, chart, alt)
    return (
        f'<figure class="chart" id="{html.escape(element_id)}" data-chart="{chart}">{svg}'
        f"<figcaption><strong>How to read this:</strong> {html.escape(how)}</figcaption></figure>"
    )


def _draw(build: Callable[[], Any]) -> Any:
    import matplotlib

    with matplotlib.rc_context(RC):
        return build()


def _ticks_thinned(ax: Any, labels: Sequence[str], most: int = 24) -> None:
    step = max(1, math.ceil(len(labels) / most))
    positions = list(range(0, len(labels), step))
    ax.set_xticks(
        positions, [labels[i] for i in positions], rotation=30 if len(labels) > 8 else 0, ha="right"
    )


# ---------------------------------------------------------------- HTML helpers


@dataclass
class _Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    numeric: Sequence[bool] = ()
    caption: str = ""

    def html(self) -> str:
        numeric = list(self.numeric) or [False] * len(self.headers)
        head = "".join(
            f'<th scope="col"{" class=num" if n else ""}>{html.escape(h)}</th>'
            for h, n in zip(self.headers, numeric, strict=True)
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td{' class=num' if n else ''}>{html.escape(str(v))}</td>"
                for v, n in zip(row, numeric, strict=True)
            )
            + "</tr>"
            for row in self.rows
        )
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        table = f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        return f'<div class="table-wrap">{table}</div>'


def _no_data(what: str = "") -> str:
    extra = f" <span class='muted'>({html.escape(what)})</span>" if what else ""
    return f'<p class="no-data">{NO_DATA}{extra}</p>'


def _sub(title: str) -> str:
    return f"<h3>{html.escape(title)}</h3>"


# ---------------------------------------------------------------- 1. OEE trend


def _section_oee(t: _Tables) -> str:
    oee = t.get("oee", "kind", "availability", "performance", "quality", "oee", "period_start")
    if oee is None:
        return _no_data()
    parts: list[str] = []
    for line in t.lines():
        rows = oee[oee["scope"] == f"line:{line}"]
        kind = "shift" if (rows["kind"] == "shift").any() else "day"
        rows = rows[rows["kind"] == kind].sort_values(["period_start", "period"])
        if len(t.lines()) > 1:
            parts.append(_sub(_line_name(line)))
        if rows.empty:
            parts.append(_no_data(_line_name(line)))
            continue
        labels = [str(p) for p in rows["period"]]

        def build(
            rows: pd.DataFrame = rows, labels: list[str] = labels, kind: str = kind, line: str = line
        ) -> Any:
            fig = _figure(10.0, 3.8)
            ax = fig.subplots()
            x = list(range(len(rows)))
            series = (
                ("availability", "Availability", BLUE, "--"),
                ("performance", "Performance", ORANGE, "--"),
                ("quality", "Quality", GREEN, "--"),
            )
            for column, name, colour, style in series:
                ax.plot(x, rows[column] * 100, style, color=colour, lw=1.4, marker="o", ms=3.5, label=name)
            ax.plot(x, rows["oee"] * 100, "-", color="#222222", lw=2.6, marker="o", ms=5, label="OEE")
            for xi, v in zip(x, rows["oee"] * 100, strict=True):
                if len(x) <= 21:
                    ax.annotate(
                        f"{v:.0f} %",
                        (xi, v),
                        textcoords="offset points",
                        xytext=(0, -13),
                        ha="center",
                        fontsize=8,
                        color="#222222",
                    )
            ax.set_ylim(0, 105)
            ax.set_ylabel("%")
            ax.set_xlabel("shift (day/shift)" if kind == "shift" else "day")
            ax.set_xlim(-0.5, len(x) - 0.5)
            _ticks_thinned(ax, labels)
            ax.set_title(f"OEE per {kind} — {line}")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18 if len(x) <= 8 else -0.3), ncol=4)
            return fig

        fig = _draw(build)
        how = (
            f"one point per {kind}; the thick black line is OEE "
            f"(= availability {TIMES} performance {TIMES} quality), the dashed lines are its three factors, "
            "all in % of planned time. The lowest dashed line is where most of the loss comes from."
        )
        if kind == "day":
            how += " (No shift rows in this period, so days are shown.)"
        parts.append(_chart("oee-trend", fig, f"OEE trend, {_line_name(line)}", how, f"chart-oee-{line}"))
        table_rows = [
            [
                str(r["period"]),
                fmt_pct(r["availability"]),
                fmt_pct(r["performance"]),
                fmt_pct(r["quality"]),
                fmt_pct(r["oee"]),
                fmt_int(r.get("good_count")),
                fmt_int(r.get("total_count")),
                fmt_hm(r.get("planned_s")),
            ]
            for _, r in rows.iterrows()
        ]
        parts.append(
            _Table(
                [
                    kind.capitalize(),
                    "Availability",
                    "Performance",
                    "Quality",
                    "OEE",
                    "Good",
                    "Total",
                    "Planned (h:mm)",
                ],
                table_rows,
                [False] + [True] * 7,
            ).html()
        )
    return "".join(parts)


# ---------------------------------------------------------------- 2. loss waterfall

AVAILABILITY_LOSSES = (
    ("breakdown_s", "Breakdown"),
    ("maintenance_s", "Maintenance"),
    ("setup_s", "Setup"),
    ("idle_s", "Idle"),
    ("other_stop_s", "Other stops"),
)
PERFORMANCE_LOSSES = (("starved_s", "Starved"), ("blocked_s", "Blocked"), ("speed_loss_s", "Speed loss"))
QUALITY_LOSSES = (("quality_loss_s", "Quality loss"),)
WATERFALL = (
    ("planned_s", "Planned time", None),
    *((c, n, "availability") for c, n in AVAILABILITY_LOSSES),
    ("run_s", "Run time", None),
    *((c, n, "performance") for c, n in PERFORMANCE_LOSSES),
    ("net_productive_s", "Net productive", None),
    *((c, n, "quality") for c, n in QUALITY_LOSSES),
    ("fully_productive_s", "Fully productive", None),
)
LOSS_COLOURS = {"availability": RED, "performance": ORANGE, "quality": PURPLE}


def _section_losses(t: _Tables) -> str:
    columns = [c for c, _, _ in WATERFALL]
    oee = t.days("oee", *columns)
    if oee is None:
        return _no_data()
    parts: list[str] = []
    for line in t.lines():
        rows = oee[oee["scope"] == f"line:{line}"]
        if len(t.lines()) > 1:
            parts.append(_sub(_line_name(line)))
        totals = {c: float(rows[c].fillna(0).sum()) for c in columns}
        notes = {
            c: float(rows[c].fillna(0).sum()) if c in rows.columns else 0.0
            for c in ("not_scheduled_s", "planned_stop_s", "unknown_s", "calendar_s")
        }
        if rows.empty or totals["planned_s"] <= 0:
            parts.append(_no_data(f"no planned time: {_line_name(line)}"))
            continue
        oee_ratio = totals["fully_productive_s"] / totals["planned_s"]

        def build(totals: dict[str, float] = totals, line: str = line, oee_ratio: float = oee_ratio) -> Any:
            from matplotlib.patches import Patch

            fig = _figure(10.0, 4.6)
            ax = fig.subplots()
            level = 0.0
            top = totals["planned_s"] / 3600
            for i, (column, _, group) in enumerate(WATERFALL):
                hours = totals[column] / 3600
                if group is None:
                    ax.bar(i, hours, color=BLUE, width=0.7, zorder=3)
                    level = hours
                    ax.text(
                        i,
                        hours + top * 0.015,
                        f"{hours:,.1f} h",
                        ha="center",
                        va="bottom",
                        fontsize=8,
                        fontweight="bold",
                    )
                else:
                    ax.bar(
                        i,
                        hours,
                        bottom=level - hours,
                        color=LOSS_COLOURS[group],
                        width=0.7,
                        zorder=3,
                        edgecolor="white",
                        linewidth=0.5,
                    )
                    ax.plot([i - 0.5, i + 0.5], [level, level], color="#999999", lw=0.6, zorder=2)
                    ax.text(
                        i,
                        level + top * 0.015,
                        f"{MINUS}{hours:,.1f} h" if hours >= 0.05 else "0 h",
                        ha="center",
                        va="bottom",
                        fontsize=7.5,
                        color="#333333",
                    )
                    level -= hours
            ax.set_xticks(range(len(WATERFALL)), [n for _, n, _ in WATERFALL], rotation=35, ha="right")
            for tick, (_, _, group) in zip(ax.get_xticklabels(), WATERFALL, strict=True):
                if group is None:
                    tick.set_fontweight("bold")
            ax.set_ylabel("hours")
            ax.set_ylim(0, top * 1.22)
            ax.set_xlim(-0.6, len(WATERFALL) - 0.4)
            ax.grid(axis="x", visible=False)
            ax.set_title(f"Where the planned time went — {line}")
            ax.text(
                0.99,
                0.98,
                f"OEE = fully productive / planned = {oee_ratio * 100:.1f} %",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=10,
                fontweight="bold",
                bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "#888888"},
            )
            fig.legend(
                handles=[
                    Patch(color=BLUE, label="time left (subtotal)"),
                    Patch(color=RED, label="availability loss (stops)"),
                    Patch(color=ORANGE, label="performance loss (slow, starved, blocked)"),
                    Patch(color=PURPLE, label="quality loss (scrap)"),
                ],
                loc="outside lower center",
                ncol=4,
            )
            return fig

        fig = _draw(build)
        how = (
            "start at the left with the planned time; each red, orange or purple bar is a loss that is taken "
            "away, each blue bar is what is left. The last blue bar is the fully productive time; divided by "
            "the planned time it is the OEE."
        )
        parts.append(
            _chart("waterfall", fig, f"Loss waterfall, {_line_name(line)}", how, f"chart-losses-{line}")
        )
        parts.append(
            "<p class='note'>Outside planned time (not in the chart; h:mm): not scheduled "
            f"{fmt_hm(notes['not_scheduled_s'])}, planned stops {fmt_hm(notes['planned_stop_s'])}"
            + (f", unknown state {fmt_hm(notes['unknown_s'])}" if notes["unknown_s"] > 0 else "")
            + (f"; calendar time {fmt_hm(notes['calendar_s'])}" if notes["calendar_s"] > 0 else "")
            + ".</p>"
        )
        table_rows = [
            [
                name,
                "loss" if group else "subtotal",
                fmt_hm(totals[c]),
                fmt_pct(totals[c] / totals["planned_s"]),
            ]
            for c, name, group in WATERFALL
        ]
        parts.append(
            _Table(["Step", "", "Time (h:mm)", "% of planned"], table_rows, [False, False, True, True]).html()
        )
    return "".join(parts)


# ---------------------------------------------------------------- 3. downtime Pareto


def _section_downtime(t: _Tables) -> str:
    down = t.days("downtime", "downtime_s")
    down = None if down is None else t.machines(down)
    if down is None:
        return _no_data()
    down = down.assign(
        machine=t.label(down),
        state=down["state"].astype(str) if "state" in down.columns else down["item"].str.split(":").str[0],
        reason=down["reason"].astype(str)
        if "reason" in down.columns
        else down["item"].str.split(":", n=1).str[-1],
        stops=down["stops"] if "stops" in down.columns else 0,
    )
    grouped = (
        down.groupby(["machine", "state", "reason"], as_index=False)[["downtime_s", "stops"]]
        .sum()
        .sort_values(["downtime_s", "machine", "state", "reason"], ascending=[False, True, True, True])
    )
    grouped = grouped[grouped["downtime_s"] > 0]
    total = float(grouped["downtime_s"].sum())
    if grouped.empty or total <= 0:
        return _no_data("no downtime recorded")
    grouped = grouped.assign(
        share=grouped["downtime_s"] / total, cumulative=grouped["downtime_s"].cumsum() / total
    )
    top = grouped.head(15)
    labels = [f"{m} · {s}:{r}" for m, s, r in zip(top["machine"], top["state"], top["reason"], strict=True)]

    def build() -> Any:
        from matplotlib.patches import Patch
        from matplotlib.ticker import PercentFormatter

        fig = _figure(10.0, 4.8)
        ax = fig.subplots()
        x = list(range(len(top)))
        colours = [STATE_COLOURS.get(s, GREY) for s in top["state"]]
        ax.bar(x, top["downtime_s"] / 3600, color=colours, width=0.7, zorder=3)
        ax.set_ylabel("downtime (hours)")
        ax.set_xticks(x, labels, rotation=40, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(x) - 0.4)
        ax.grid(axis="x", visible=False)
        ax2 = ax.twinx()
        ax2.plot(x, top["cumulative"] * 100, color="#222222", marker="o", ms=4, lw=1.6, label="cumulative %")
        ax2.axhline(80, color="#888888", lw=0.8, ls=":")
        ax2.text(len(x) - 0.45, 81, "80 %", ha="right", va="bottom", fontsize=7.5, color="#555555")
        ax2.set_ylim(0, 105)
        ax2.yaxis.set_major_formatter(PercentFormatter(100))
        ax2.set_ylabel("cumulative share of all downtime")
        ax2.grid(False)
        ax2.spines["right"].set_visible(True)
        states = list(dict.fromkeys(top["state"]))
        handles = [Patch(color=STATE_COLOURS.get(s, GREY), label=s) for s in states]
        handles.append(ax2.get_lines()[0])
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
        shown = f"top {len(top)} of {len(grouped)}" if len(grouped) > len(top) else f"all {len(top)}"
        ax.set_title(f"Downtime by machine and cause ({shown})")
        return fig

    fig = _draw(build)
    how = (
        "bars are the hours each machine lost to each cause over the whole period, largest first; the line "
        "(right axis) adds them up as a share of all downtime. The causes left of the 80 % mark are the few "
        "worth fixing first."
    )
    table_rows = [
        [
            r["machine"],
            r["state"],
            r["reason"],
            fmt_int(r["stops"]),
            fmt_hm(r["downtime_s"]),
            fmt_pct(r["share"]),
            fmt_pct(r["cumulative"]),
        ]
        for _, r in top.iterrows()
    ]
    table = _Table(
        ["Machine", "State", "Reason", "Stops", "Downtime (h:mm)", "Share", "Cumulative"],
        table_rows,
        [False, False, False, True, True, True, True],
    )
    return _chart("pareto", fig, "Downtime Pareto", how, "chart-downtime") + table.html()


# ---------------------------------------------------------------- 4. reliability


def _section_reliability(t: _Tables) -> str:
    rel = t.days("reliability", "failures", "run_s", "repair_s")
    rel = None if rel is None else t.machines(rel)
    if rel is None:
        return _no_data()
    rel = rel.assign(
        machine=t.label(rel),
        repairs=rel["repairs"] if "repairs" in rel.columns else rel["failures"],
        planned_s=rel["planned_s"] if "planned_s" in rel.columns else float("nan"),
    )
    sums = rel.groupby("machine", as_index=False)[
        ["failures", "repairs", "run_s", "planned_s", "repair_s"]
    ].sum(min_count=1)
    sums = sums.sort_values("machine")
    sums["mtbf_s"] = [_div(r, f) for r, f in zip(sums["run_s"], sums["failures"], strict=True)]
    sums["mttr_s"] = [_div(r, n) for r, n in zip(sums["repair_s"], sums["repairs"], strict=True)]
    sums["availability"] = [_div(r, p) for r, p in zip(sums["run_s"], sums["planned_s"], strict=True)]

    def build() -> Any:
        fig = _figure(10.0, 0.9 + 0.42 * len(sums))
        left, right = fig.subplots(1, 2, sharey=True)
        y = list(range(len(sums)))
        mtbf = [(_num(v) or 0.0) / 3600 for v in sums["mtbf_s"]]
        mttr = [(_num(v) or 0.0) / 60 for v in sums["mttr_s"]]
        left.barh(y, mtbf, color=GREEN, height=0.6, zorder=3)
        right.barh(y, mttr, color=RED, height=0.6, zorder=3)
        for ax, values, fmt in ((left, mtbf, "{:,.1f} h"), (right, mttr, "{:,.0f} min")):
            span = max(values, default=0.0) or 1.0
            ax.set_xlim(0, span * 1.25)
            for yi, v, raw in zip(y, values, sums["failures"], strict=True):
                text = fmt.format(v) if v > 0 else ("no failures" if not raw else "—")
                ax.text(v + span * 0.02, yi, text, va="center", fontsize=8)
            ax.grid(axis="y", visible=False)
        left.set_yticks(y, list(sums["machine"]))
        left.invert_yaxis()
        left.set_xlabel("MTBF (hours of run time per failure) — longer is better")
        right.set_xlabel("MTTR (minutes per repair) — shorter is better")
        left.set_title("Mean time between failures")
        right.set_title("Mean time to repair")
        return fig

    fig = _draw(build)
    how = (
        "green bars: how long a machine ran between failures (sum of run time / failures); red bars: how "
        "long a repair took on average (sum of repair time / repairs), both over the whole period. "
        "Availability below is run time / planned time."
    )
    table_rows = [
        [
            r["machine"],
            fmt_int(r["failures"]),
            fmt_int(r["repairs"]),
            fmt_hm(r["run_s"]),
            fmt_hm(r["repair_s"]),
            fmt_hm(r["mtbf_s"]) if _num(r["mtbf_s"]) is not None else "no failures",
            fmt_hm(r["mttr_s"]),
            fmt_pct(r["availability"]),
        ]
        for _, r in sums.iterrows()
    ]
    table = _Table(
        [
            "Machine",
            "Failures",
            "Repairs",
            "Run (h:mm)",
            "Repair (h:mm)",
            "MTBF (h:mm)",
            "MTTR (h:mm)",
            "Availability",
        ],
        table_rows,
        [False] + [True] * 7,
    )
    return _chart("reliability", fig, "MTBF and MTTR per machine", how, "chart-reliability") + table.html()


# ---------------------------------------------------------------- 5. alarms

ISA_LINES = ((1.0, "1: acceptable", ":"), (2.0, "2: manageable", "--"), (10.0, "10: flood", "-"))
ISA_BANDS = (
    ("≤ 1 (acceptable)", GREEN),
    (f"1{DASH}2 (manageable)", YELLOW),
    (f"2{DASH}10 (over-demanding)", ORANGE),
    ("≥ 10 (flood)", RED),
)


def _rate_colour(per_operator: float) -> str:
    if per_operator <= 1:
        return GREEN
    if per_operator <= 2:
        return YELLOW
    if per_operator < 10:
        return ORANGE
    return RED


def _alarm_rate_charts(t: _Tables) -> list[str]:
    rate = t.get("alarm_rate", "per_operator")
    if rate is not None:
        line_rows = rate[rate["scope"].str.startswith("line:")]
        rate = line_rows if not line_rows.empty else rate
        starts = pd.to_datetime(rate["item"], utc=True, errors="coerce")
        rate = rate.assign(start=starts).dropna(subset=["start"])
    if rate is None or rate.empty:
        return [_sub("Alarms per operator per 10 minutes"), _no_data()]
    parts: list[str] = []
    for line in t.lines() or [""]:
        rows = rate[rate["line_id"] == line] if line and "line_id" in rate.columns else rate
        rows = rows.groupby("start", as_index=False)["per_operator"].sum().sort_values("start")
        if len(t.lines()) > 1:
            parts.append(_sub(_line_name(line)))
        if rows.empty:
            parts.append(_no_data(_line_name(line)))
            continue
        fig = _draw(functools.partial(_alarm_rate_figure, rows, line))
        how = (
            "one bar per 10-minute interval: alarms raised per operator. ISA-18.2 calls ≤ 1 acceptable, "
            "≤ 2 manageable and ≥ 10 a flood; bars are coloured by the band they fall in, so red bars are "
            "floods an operator cannot keep up with."
        )
        parts.append(
            _chart("alarm-rate", fig, f"Alarm rate, {_line_name(line)}", how, f"chart-alarms-{line}")
        )
    return parts


def _alarm_rate_figure(rows: pd.DataFrame, line: str) -> Any:
    import matplotlib.dates as mdates
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig = _figure(10.0, 4.2)
    ax = fig.subplots()
    starts = rows["start"].dt.tz_convert("UTC").dt.tz_localize(None)
    values = [float(v) for v in rows["per_operator"].fillna(0)]
    ax.bar(
        starts + pd.Timedelta(minutes=5),
        values,
        width=10 / 1440 * 0.85,
        color=[_rate_colour(v) for v in values],
        edgecolor=[_rate_colour(v) if v > 2 else "#6b6b6b" for v in values],
        linewidth=0.3,
        zorder=3,
    )
    for level, _, style in ISA_LINES:
        ax.axhline(level, color="#333333", lw=1.0, ls=style, zorder=4)
    ax.set_ylim(0, max(12.0, max(values, default=0.0) * 1.1))
    first, last = starts.min(), starts.max() + pd.Timedelta(minutes=10)
    ax.set_xlim(first, last)
    ax.set_ylabel("alarms per operator per 10 min")
    one_day = first.normalize() == (last - pd.Timedelta(seconds=1)).normalize()
    ax.set_xlabel(f"time (UTC) on {first:%Y-%m-%d}" if one_day else "time (UTC)")
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=12))  # type: ignore[no-untyped-call]
    formatter = mdates.DateFormatter("%H:%M" if one_day else "%m-%d %H:%M")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.grid(axis="x", visible=False)
    handles: list[Artist] = [
        Patch(facecolor=c, edgecolor="#6b6b6b", linewidth=0.3, label=n) for n, c in ISA_BANDS
    ]
    handles += [Line2D([], [], color="#333333", lw=1.0, ls=s, label=f"line at {n}") for _, n, s in ISA_LINES]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, title="ISA-18.2 benchmark")
    ax.set_title(f"Alarm load per operator — {line}" if line else "Alarm load per operator")
    return fig


ALARM_LOAD_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("raised", "Raised", fmt_int),
    ("operators", "Operators", fmt_int),
    ("per_10min_mean", "Mean / 10 min", fmt_float),
    ("per_10min_peak", "Peak / 10 min", fmt_float),
    ("share_acceptable", "Acceptable", fmt_pct),
    ("share_manageable", "Manageable", fmt_pct),
    ("share_flood", "Flood", fmt_pct),
    ("floods", "Floods", fmt_int),
    ("top10_share", "Top-10 share", fmt_pct),
    ("standing", "Standing", fmt_int),
    ("chattering", "Chattering", fmt_int),
)


def _alarm_load_table(t: _Tables) -> list[str]:
    load = t.get("alarm_load", "share_acceptable", "share_manageable", "share_flood")
    if load is None:
        return [_sub("Alarm load summary"), _no_data()]
    load = load.sort_values([c for c in ("line_id", "period_start", "period", "scope") if c in load.columns])
    present = [c for c in ALARM_LOAD_COLUMNS if c[0] in load.columns]
    table_rows = [
        [str(r.get("period", "")), _entity(r["scope"])] + [f(r[c]) for c, _, f in present]
        for _, r in load.iterrows()
    ]
    table = _Table(
        ["Period", "Scope"] + [n for _, n, _ in present],
        table_rows,
        [False, False] + [True] * len(present),
        caption="Acceptable / manageable / flood: share of 10-minute intervals in each ISA-18.2 band; "
        "top-10 share: share of all alarms raised by the ten most frequent.",
    )
    return [_sub("Alarm load summary"), table.html()]


def _top_alarms_table(t: _Tables) -> list[str]:
    alarms = t.days("alarms", "raised")
    if alarms is None:
        return [_sub("Most frequent alarms"), _no_data()]
    line_rows = alarms[alarms["scope"].str.startswith("line:")]
    alarms = line_rows if not line_rows.empty else alarms
    split = alarms["item"].str.split(":", n=1)
    alarms = alarms.assign(
        alarm_type=alarms["alarm_type"] if "alarm_type" in alarms.columns else split.str[0],
        severity=alarms["severity"] if "severity" in alarms.columns else split.str[-1],
    )
    for c in ("acked", "cleared", "standing", "chattering", "ack_mean_s", "clear_mean_s", "ack_p90_s"):
        if c not in alarms.columns:
            alarms = alarms.assign(**{c: float("nan")})
    acked, cleared = alarms["acked"].fillna(0), alarms["cleared"].fillna(0)
    alarms = alarms.assign(  # means over several days, weighted by how many alarms each day's mean covers
        ack_weight=(alarms["ack_mean_s"] * acked).fillna(0),
        ack_n=acked.where(alarms["ack_mean_s"].notna(), 0),
        clear_weight=(alarms["clear_mean_s"] * cleared).fillna(0),
        clear_n=cleared.where(alarms["clear_mean_s"].notna(), 0),
    )
    top = (
        alarms.groupby(["alarm_type", "severity"], as_index=False)
        .agg(
            raised=("raised", "sum"),
            acked=("acked", "sum"),
            cleared=("cleared", "sum"),
            ack_weight=("ack_weight", "sum"),
            ack_n=("ack_n", "sum"),
            clear_weight=("clear_weight", "sum"),
            clear_n=("clear_n", "sum"),
            ack_p90_s=("ack_p90_s", "max"),
            standing=("standing", "sum"),
            chattering=("chattering", "sum"),
        )
        .sort_values(["raised", "alarm_type", "severity"], ascending=[False, True, True])
        .head(10)
    )
    table_rows = [
        [
            str(r["alarm_type"]),
            str(r["severity"]),
            fmt_int(r["raised"]),
            fmt_int(r["acked"]),
            fmt_int(r["cleared"]),
            fmt_s(_div(r["ack_weight"], r["ack_n"])),
            fmt_s(r["ack_p90_s"]),
            fmt_s(_div(r["clear_weight"], r["clear_n"])),
            fmt_int(r["standing"]),
            fmt_int(r["chattering"]),
        ]
        for _, r in top.iterrows()
    ]
    headers = ["Alarm", "Severity", "Raised", "Acked", "Cleared", "Mean ack", "p90 ack (worst day)"]
    headers += ["Mean clear", "Standing", "Chattering"]
    return [_sub("Most frequent alarms"), _Table(headers, table_rows, [False, False] + [True] * 8).html()]


def _section_alarms(t: _Tables) -> str:
    return "".join([*_alarm_rate_charts(t), *_alarm_load_table(t), *_top_alarms_table(t)])


# ---------------------------------------------------------------- 6. cycle times


def _weighted(frame: pd.DataFrame, column: str) -> float:
    values = frame[column].astype(float)
    weights = frame["parts"].astype(float).fillna(0) if "parts" in frame.columns else None
    mask = values.notna()
    if weights is not None and float(weights[mask].sum()) > 0:
        return float((values[mask] * weights[mask]).sum() / weights[mask].sum())
    return float(values[mask].mean()) if mask.any() else float("nan")


def _section_cycle_time(t: _Tables) -> str:
    needed = ("p05_s", "p25_s", "p50_s", "p75_s", "p95_s")
    ct = t.days("cycle_time", *needed)
    ct = None if ct is None else ct[ct["scope"].str.startswith("machine:")]
    if ct is None or ct.empty:
        return _no_data()
    ct = ct.assign(machine=t.label(ct))
    boxes: dict[str, list[dict[str, Any]]] = {}
    table_rows: list[list[str]] = []
    for (machine, family), rows in ct.groupby(["machine", "item"], sort=True):
        stats = {c: _weighted(rows, c) for c in (*needed, "mean_s", "ideal_s") if c in rows.columns}
        if any(math.isnan(stats[c]) for c in needed):
            continue
        parts_n = float(rows["parts"].sum()) if "parts" in rows.columns else float("nan")
        boxes.setdefault(str(machine), []).append(
            {
                "label": str(family) or "all",
                "whislo": stats["p05_s"],
                "q1": stats["p25_s"],
                "med": stats["p50_s"],
                "q3": stats["p75_s"],
                "whishi": stats["p95_s"],
                "mean": stats.get("mean_s", float("nan")),
                "fliers": [],
                "ideal": stats.get("ideal_s", float("nan")),
            }
        )
        table_rows.append(
            [
                str(machine),
                str(family) or "all",
                fmt_int(parts_n),
                fmt_pct(_div(rows["scrap"].sum(), parts_n)) if "scrap" in rows.columns else "—",
                fmt_s(stats.get("ideal_s")),
                fmt_s(stats.get("mean_s")),
                fmt_s(stats["p05_s"]),
                fmt_s(stats["p50_s"]),
                fmt_s(stats["p95_s"]),
                fmt_s(rows["max_s"].max()) if "max_s" in rows.columns else "—",
            ]
        )
    if not boxes:
        return _no_data()
    several_days = ct.groupby(["machine", "item"]).size().max() > 1

    def build() -> Any:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        n = len(boxes)
        ncols = min(n, 5)
        nrows = math.ceil(n / ncols)
        fig = _figure(10.0, 0.7 + 2.9 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        flat = [ax for row in axes for ax in row]
        for ax, (machine, stats) in zip(flat, boxes.items(), strict=False):
            ax.bxp(
                stats,
                showmeans=True,
                showfliers=False,
                patch_artist=True,
                boxprops={"facecolor": SKY, "edgecolor": "#333333"},
                medianprops={"color": "#222222", "lw": 1.6},
                meanprops={"marker": "^", "markerfacecolor": "white", "markeredgecolor": "#222222", "ms": 5},
                whiskerprops={"color": "#333333"},
                capprops={"color": "#333333"},
            )
            ideals = [(i + 1, s["ideal"]) for i, s in enumerate(stats) if not math.isnan(s["ideal"])]
            if ideals:
                ax.scatter(
                    [i for i, _ in ideals], [v for _, v in ideals], marker="D", color=RED, s=26, zorder=5
                )
            ax.set_title(machine, fontsize=10)
            ax.tick_params(axis="x", labelrotation=30 if len(stats) > 2 else 0, labelsize=8)
            ax.grid(axis="x", visible=False)
            low = min(
                min(s["whislo"], s["ideal"] if not math.isnan(s["ideal"]) else s["whislo"]) for s in stats
            )
            high = max(
                max(s["whishi"], s["ideal"] if not math.isnan(s["ideal"]) else s["whishi"]) for s in stats
            )
            pad = (high - low) * 0.15 or max(high * 0.1, 0.5)
            ax.set_ylim(max(0.0, low - pad), high + pad)
        for ax in flat[n:]:
            ax.set_visible(False)
        for row in axes:
            row[0].set_ylabel("cycle time (s)")
        fig.legend(
            handles=[
                Patch(facecolor=SKY, edgecolor="#333333", label=f"p25{DASH}p75 (box), median line"),
                Line2D([], [], color="#333333", label=f"whiskers p05{DASH}p95"),
                Line2D(
                    [],
                    [],
                    marker="^",
                    ls="",
                    markerfacecolor="white",
                    markeredgecolor="#222222",
                    label="mean",
                ),
                Line2D([], [], marker="D", ls="", color=RED, label="ideal cycle time"),
            ],
            loc="outside lower center",
            ncol=4,
        )
        fig.suptitle("Cycle time per machine and product family", fontsize=11, fontweight="bold")
        return fig

    fig = _draw(build)
    how = (
        "each box is one machine's parts (per product family; 'all' is every family): the box spans the "
        f"middle half of the cycle times (p25{DASH}p75), the line in it is the median, the whiskers reach "
        "p05 and p95, the triangle is the mean and the red diamond the ideal cycle time. A box far above "
        "its diamond is a speed loss; a tall box is an unstable process. Each machine has its own scale."
    )
    if several_days:
        how += " Percentiles over several days are the days' percentiles averaged, weighted by parts."
    table = _Table(
        ["Machine", "Family", "Parts", "Scrap", "Ideal", "Mean", "p05", "Median", "p95", "Max"],
        table_rows,
        [False, False] + [True] * 8,
    )
    return _chart("cycle-time", fig, "Cycle-time box plots", how, "chart-cycle-time") + table.html()


# ---------------------------------------------------------------- 7. energy, schedule, anomalies


def _section_energy(t: _Tables) -> str:
    energy = t.days("energy", "energy_kwh", "good_count")
    if energy is None:
        return _no_data()
    machines = energy[energy["scope"].str.startswith("machine:")]
    lines = energy[energy["scope"].str.startswith("line:")]
    rows: list[tuple[str, pd.DataFrame]] = []
    if not machines.empty:
        machines = machines.assign(name=t.label(machines))
        rows += [(str(m), g) for m, g in machines.groupby("name", sort=True)]
    if not lines.empty:
        rows += [(f"line {_entity(str(s))} (total)", g) for s, g in lines.groupby("scope", sort=True)]
    summary: list[dict[str, Any]] = []
    for name, g in rows:
        kwh = float(g["energy_kwh"].sum())
        good = float(g["good_count"].sum())
        readings = g["readings"].astype(float) if "readings" in g.columns else None
        mean_kw = (
            float((g["mean_power_kw"] * readings).sum() / readings.sum())
            if readings is not None and "mean_power_kw" in g.columns and readings.sum() > 0
            else _num(g["mean_power_kw"].mean())
            if "mean_power_kw" in g.columns
            else None
        )
        summary.append({"name": name, "kwh": kwh, "good": good, "per_good": _div(kwh, good), "kw": mean_kw})
    bars = [s for s in summary if s["per_good"] is not None and not s["name"].endswith("(total)")]
    bars = bars or [s for s in summary if s["per_good"] is not None]
    out = ""
    if bars:

        def build() -> Any:
            fig = _figure(10.0, 0.9 + 0.42 * len(bars))
            ax = fig.subplots()
            y = list(range(len(bars)))
            values = [float(s["per_good"]) for s in bars]
            ax.barh(y, values, color=GREEN, height=0.6, zorder=3)
            span = max(values) or 1.0
            for yi, v in zip(y, values, strict=True):
                ax.text(v + span * 0.01, yi, f"{v:,.3f} kWh", va="center", fontsize=8)
            ax.set_xlim(0, span * 1.2)
            ax.set_yticks(y, [s["name"] for s in bars])
            ax.invert_yaxis()
            ax.grid(axis="y", visible=False)
            ax.set_xlabel("kWh per good part")
            ax.set_title("Energy per good part")
            return fig

        how = (
            "energy each machine used over the period divided by the good parts it made: a long bar is a "
            "machine that uses much energy per sellable part (scrap and idle running both lengthen it)."
        )
        out += _chart("energy", _draw(build), "Energy per good part", how, "chart-energy")
    table_rows = [
        [
            s["name"],
            fmt_kwh(s["kwh"]),
            fmt_float(s["kw"], 1, "kW"),
            fmt_int(s["good"]),
            fmt_kwh(s["per_good"], 3),
        ]
        for s in summary
    ]
    out += _Table(
        ["Scope", "Energy", "Mean power", "Good parts", "Energy per good part"],
        table_rows,
        [False, True, True, True, True],
    ).html()
    return out


def _section_schedule(t: _Tables) -> str:
    sched = t.days("schedule", "requests")
    if sched is None:
        return _no_data()
    for c in ("plans", "unanswered", "feasible", "chosen", "mean_solve_ms", "mean_gap", "share"):
        if c not in sched.columns:
            sched = sched.assign(**{c: float("nan")})
    plans = sched["plans"].fillna(0)
    sched = sched.assign(
        solve_weight=(sched["mean_solve_ms"] * plans).fillna(0),
        solve_plans=plans.where(sched["mean_solve_ms"].notna(), 0),
        gap_weight=(sched["mean_gap"] * plans).fillna(0),
        gap_plans=plans.where(sched["mean_gap"].notna(), 0),
    )
    g = sched.groupby("item", as_index=False).agg(
        requests=("requests", "sum"),
        plans=("plans", "sum"),
        unanswered=("unanswered", "sum"),
        feasible=("feasible", "sum"),
        chosen=("chosen", "sum"),
        solve_weight=("solve_weight", "sum"),
        solve_plans=("solve_plans", "sum"),
        gap_weight=("gap_weight", "sum"),
        gap_plans=("gap_plans", "sum"),
        mean_solve_ms=("mean_solve_ms", "mean"),
        mean_gap=("mean_gap", "mean"),
    )
    g["solve"] = [
        _div(w, p) if _num(p) else _num(m)
        for w, p, m in zip(g["solve_weight"], g["solve_plans"], g["mean_solve_ms"], strict=True)
    ]
    g["gap"] = [
        _div(w, p) if _num(p) else _num(m)
        for w, p, m in zip(g["gap_weight"], g["gap_plans"], g["mean_gap"], strict=True)
    ]
    solvers = g[g["item"].str.startswith("solver:")].sort_values("item")
    total_chosen = float(solvers["chosen"].sum())
    g["share_of_chosen"] = [
        _div(c, total_chosen) if str(i).startswith("solver:") else None
        for i, c in zip(g["item"], g["chosen"], strict=True)
    ]
    order = {"": 0, "solver": 1, "trigger": 2}
    g = g.assign(_o=g["item"].map(lambda s: order.get(str(s).split(":")[0] if s else "", 3))).sort_values(
        ["_o", "item"]
    )
    out = ""
    if not solvers.empty and total_chosen > 0:
        solvers = g[g["item"].str.startswith("solver:")]

        def build() -> Any:
            fig = _figure(10.0, 0.9 + 0.42 * len(solvers))
            left, right = fig.subplots(1, 2, sharey=True)
            y = list(range(len(solvers)))
            names = [_entity(s) for s in solvers["item"]]
            shares = [(_num(v) or 0.0) * 100 for v in solvers["share_of_chosen"]]
            solve = [_num(v) or 0.0 for v in solvers["solve"]]
            left.barh(y, shares, color=BLUE, height=0.6, zorder=3)
            right.barh(y, solve, color=GREY, height=0.6, zorder=3)
            for ax, values, fmt in ((left, shares, "{:.0f} %"), (right, solve, "{:,.0f} ms")):
                span = max(values, default=0.0) or 1.0
                ax.set_xlim(0, span * 1.25)
                for yi, v in zip(y, values, strict=True):
                    ax.text(v + span * 0.02, yi, fmt.format(v), va="center", fontsize=8)
                ax.grid(axis="y", visible=False)
            left.set_yticks(y, names)
            left.invert_yaxis()
            left.set_xlabel("share of the chosen plans (%)")
            right.set_xlabel("mean solve time (ms)")
            left.set_title("Whose plan was chosen")
            right.set_title("How long each solver took")
            return fig

        how = (
            "left: of the plans put into effect, the share each solver produced; right: that solver's mean "
            "solve time. A solver that is rarely chosen but slow is a candidate to switch off."
        )
        out += _chart("schedule", _draw(build), "Schedule solvers", how, "chart-schedule")

    def label(item: str) -> str:
        if not item:
            return "all requests"
        kind, _, name = item.partition(":")
        return f"{kind} {name}"

    table_rows = [
        [
            label(str(r["item"])),
            fmt_int(r["requests"]),
            fmt_int(r["plans"]),
            fmt_int(r["unanswered"]),
            fmt_int(r["feasible"]),
            fmt_int(r["chosen"]),
            fmt_pct(r["share_of_chosen"]),
            fmt_float(r["solve"], 0, "ms"),
            fmt_pct(r["gap"]),
        ]
        for _, r in g.iterrows()
    ]
    out += _Table(
        [
            "Record",
            "Requests",
            "Plans",
            "Unanswered",
            "Feasible",
            "Chosen",
            "Share of chosen",
            "Mean solve",
            "Mean gap",
        ],
        table_rows,
        [False] + [True] * 8,
    ).html()
    return out


def _section_anomalies(t: _Tables) -> str:
    an = t.days("anomalies", "count")
    an = None if an is None else t.machines(an)
    if an is None:
        return _no_data()
    an = an.assign(machine=t.label(an), detector=an["item"].replace("", "all"))
    if "mean_score" not in an.columns:
        an = an.assign(mean_score=float("nan"))
    an = an.assign(score_weight=an["mean_score"] * an["count"])
    g = an.groupby(["machine", "detector"], as_index=False).agg(
        count=("count", "sum"), score_weight=("score_weight", "sum")
    )
    g["mean_score"] = [_div(w, c) for w, c in zip(g["score_weight"], g["count"], strict=True)]
    pivot = g.pivot_table(index="machine", columns="detector", values="count", aggfunc="sum", fill_value=0)
    out = ""
    if float(g["count"].sum()) > 0:

        def build() -> Any:
            fig = _figure(10.0, 0.9 + 0.42 * len(pivot.index) + 0.2 * len(pivot.columns))
            ax = fig.subplots()
            y = list(range(len(pivot.index)))
            left = [0.0] * len(y)
            palette = [BLUE, ORANGE, GREEN, PURPLE, SKY, RED, GREY]
            for i, detector in enumerate(pivot.columns):
                values = [float(v) for v in pivot[detector]]
                ax.barh(
                    y,
                    values,
                    left=left,
                    color=palette[i % len(palette)],
                    height=0.6,
                    label=str(detector),
                    zorder=3,
                )
                left = [a + b for a, b in zip(left, values, strict=True)]
            span = max(left) or 1.0
            for yi, v in zip(y, left, strict=True):
                ax.text(v + span * 0.01, yi, f"{v:,.0f}", va="center", fontsize=8)
            ax.set_xlim(0, span * 1.15)
            ax.set_yticks(y, [str(m) for m in pivot.index])
            ax.invert_yaxis()
            ax.grid(axis="y", visible=False)
            ax.set_xlabel("anomalies flagged (count)")
            ax.set_title("Anomalies per machine and detector")
            fig.legend(loc="outside lower center", ncol=min(4, len(pivot.columns)), title="detector")
            return fig

        how = (
            "how many readings each detector flagged as anomalous on each machine over the period; the bars "
            "are stacked by detector. A machine flagged by several detectors at once deserves a look."
        )
        out += _chart("anomalies", _draw(build), "Anomalies per machine", how, "chart-anomalies")
    table_rows = [
        [str(r["machine"]), str(r["detector"]), fmt_int(r["count"]), fmt_float(r["mean_score"], 3)]
        for _, r in g.sort_values(["machine", "detector"]).iterrows()
    ]
    out += _Table(
        ["Machine", "Detector", "Count", "Mean score"], table_rows, [False, False, True, True]
    ).html()
    return out


SECTION_BUILDERS: dict[str, Callable[[_Tables], str]] = {
    "oee": _section_oee,
    "losses": _section_losses,
    "downtime": _section_downtime,
    "reliability": _section_reliability,
    "alarms": _section_alarms,
    "cycle-time": _section_cycle_time,
    "energy": _section_energy,
    "schedule": _section_schedule,
    "anomalies": _section_anomalies,
}

INTRO = {
    "oee": "Overall equipment effectiveness of the line, per shift.",
    "losses": "All losses over the whole period, from planned time down to fully productive time.",
    "downtime": "Which machines lost the most time, and to what.",
    "reliability": "How often each machine failed and how long repairs took.",
    "alarms": "Alarm rates against the ISA-18.2 operator-load benchmarks, and the noisiest alarms.",
    "cycle-time": "The spread of cycle times per machine and product family, against the ideal cycle time.",
    "energy": "Electrical energy per good part made.",
    "schedule": "What the schedulers were asked, what they answered and whose plans were used.",
    "anomalies": "Readings the anomaly detectors flagged.",
}

CSS = """
:root { --ink:#1f2328; --muted:#59636e; --rule:#d0d7de; --band:#f6f8fa; --accent:#0072B2; }
* { box-sizing: border-box; }
html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; font-size: 15px; line-height: 1.45; }
body { margin: 0 auto; padding: 24px 28px 48px; max-width: 1120px; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 10px; margin-bottom: 18px; }
h1 { font-size: 1.7rem; margin: 0 0 8px; }
h2 { font-size: 1.3rem; margin: 0 0 4px; color: var(--accent); }
h3 { font-size: 1.05rem; margin: 18px 0 6px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.meta dt { font-weight: 600; color: var(--muted); }
dl.meta dd { margin: 0; }
nav.toc { font-size: .9rem; margin: 0 0 18px; }
nav.toc ol { display: flex; flex-wrap: wrap; gap: 4px 18px; list-style: none; padding: 0; margin: 0; }
nav.toc a { color: var(--accent); text-decoration: none; }
section { border-top: 1px solid var(--rule); padding: 16px 0 10px; }
p.intro { margin: 0 0 10px; color: var(--muted); }
figure.chart { margin: 8px 0 14px; }
figure.chart svg { display: block; width: 100%; height: auto; max-width: 1040px; }
figcaption { font-size: .88rem; color: var(--muted); margin-top: 4px; max-width: 80ch; }
p.no-data { padding: 14px 16px; background: var(--band); border: 1px dashed var(--rule);
            color: var(--muted); font-style: italic; }
p.note { font-size: .9rem; color: var(--muted); }
.muted { color: var(--muted); }
.table-wrap { overflow-x: auto; margin: 6px 0 12px; }
table { border-collapse: collapse; font-size: .86rem; min-width: 50%; }
caption { caption-side: bottom; text-align: left; font-size: .8rem; color: var(--muted); padding-top: 4px; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: bottom; }
td { white-space: nowrap; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
footer { margin-top: 24px; font-size: .8rem; color: var(--muted); }
@page { size: A4; margin: 14mm; }
@media print {
  html { font-size: 11px; }
  body { padding: 0; max-width: none; }
  nav.toc { display: none; }
  section { break-before: auto; }
  figure.chart, table, h2, h3 { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _section_html(section: str, heading: str, tables: _Tables) -> str:
    try:
        body = SECTION_BUILDERS[section](tables)
    except (KeyError, ValueError, TypeError, ZeroDivisionError, AttributeError) as exc:
        log.warning("report section %s could not be drawn: %s", section, exc, exc_info=True)
        body = _no_data(f"the data could not be read: {exc}")
    return (
        f'<section id="{section}" data-section="{section}"><h2>{html.escape(heading)}</h2>'
        f'<p class="intro">{html.escape(INTRO[section])}</p>{body}</section>'
    )


def _page(
    tables: _Tables,
    *,
    title: str,
    line_ids: Sequence[str],
    period_from: datetime,
    period_to: datetime,
    calendar_name: str,
    generated_at: datetime,
    csv_names: Iterable[str],
) -> str:
    lines = ", ".join(line_ids) if line_ids else "all lines"
    meta = (
        ("Line" + ("s" if len(line_ids) > 1 else ""), lines),
        ("Period", f"{_when(period_from)} → {_when(period_to)}"),
        ("Calendar", calendar_name or "—"),
        ("Generated", _when(generated_at)),
    )
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in meta)
    toc = "".join(f'<li><a href="#{s}">{html.escape(h)}</a></li>' for s, h in REPORT_SECTIONS)
    sections = "".join(_section_html(s, h, tables) for s, h in REPORT_SECTIONS)
    csvs = ", ".join(f"{html.escape(n)}.csv" for n in csv_names) or "none"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{html.escape(title)}</h1><dl class="meta">{dl}</dl></header>'
        f'<nav class="toc" aria-label="Sections"><ol>{toc}</ol></nav>'
        f"<main>{sections}</main>"
        f"<footer>Times are UTC; durations are h:mm; ratios are % of planned time unless stated. "
        f"The tables behind this page are in the CSV files beside it: {csvs}.</footer>"
        "</body></html>\n"
    )


def write_csvs(tables: Mapping[str, pd.DataFrame], out_dir: Path) -> dict[str, Path]:
    """Write ``<report>.csv`` for every table (sorted by its keys; floats with 10 significant digits,
    times as ISO 8601 UTC); returns report name -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csvs: dict[str, Path] = {}
    for name in sorted(tables):
        frame = tables[name]
        if not isinstance(frame, pd.DataFrame):
            continue
        path = out_dir / f"{_safe_name(name)}.csv"
        _write_csv(frame, path)
        csvs[name] = path
    return csvs


def write_report(
    tables: Mapping[str, pd.DataFrame],
    out_dir: Path,
    *,
    title: str,
    line_ids: Sequence[str],
    period_from: datetime,
    period_to: datetime,
    calendar_name: str,
    generated_at: datetime,
) -> ReportFiles:
    """Write ``<report>.csv`` for every table in ``tables`` and ``report.html`` into ``out_dir``."""
    out_dir = Path(out_dir)
    csvs = write_csvs(tables, out_dir)
    page = _page(
        _Tables(tables, line_ids),
        title=title,
        line_ids=list(line_ids),
        period_from=period_from,
        period_to=period_to,
        calendar_name=calendar_name,
        generated_at=generated_at,
        csv_names=[_safe_name(n) for n in csvs],
    )
    html_path = out_dir / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return ReportFiles(html=html_path, csvs=csvs)
