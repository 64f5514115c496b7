"""Gantt charts of a schedule: the data (one bar per operation, what the gateway serves) and a
drawing (matplotlib, SVG or PNG by the file's suffix; a self-contained HTML page embeds the SVG).

>>> from processors.scheduling.model import ScheduledOp
>>> gantt_rows([ScheduledOp("J0/0", "J0", "M1", 0.0, 3.0, 1.0)])
[{'machine': 'M1', 'job': 'J0', 'operation': 'J0/0', 'start_s': 0.0, 'end_s': 3.0, 'setup_s': 1.0}]
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from processors.scheduling.model import Instance, ScheduledOp

__all__ = ["draw_gantt", "gantt_rows"]


def gantt_rows(schedule: Sequence[ScheduledOp]) -> list[dict[str, Any]]:
    return [
        {
            "machine": s.machine,
            "job": s.job_id,
            "operation": s.key,
            "start_s": s.start,
            "end_s": s.end,
            "setup_s": s.setup_s,
        }
        for s in sorted(schedule, key=lambda s: (s.machine, s.start))
    ]


def draw_gantt(instance: Instance, schedule: Sequence[ScheduledOp], title: str, path: Path) -> Path:
    """Draw ``schedule`` to ``path`` (``.svg``, ``.png`` or ``.html``); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    machines = list(instance.machines)
    jobs = [j.job_id for j in instance.jobs]
    cmap = plt.get_cmap("tab20")
    colour = {j: cmap(i % 20) for i, j in enumerate(jobs)}
    end = max((s.end for s in schedule), default=1.0)
    fig, ax = plt.subplots(figsize=(min(18.0, 6 + len(schedule) * 0.08), 1.2 + 0.45 * len(machines)))
    try:
        for s in schedule:
            y = machines.index(s.machine)
            if s.setup_s > 0:
                ax.barh(
                    y,
                    s.setup_s,
                    left=s.start - s.setup_s,
                    height=0.6,
                    color="#bbbbbb",
                    hatch="//",
                    edgecolor="#888888",
                )
            ax.barh(
                y,
                s.end - s.start,
                left=s.start,
                height=0.6,
                color=colour[s.job_id],
                edgecolor="black",
                linewidth=0.4,
            )
            if (s.end - s.start) > end / 40 and len(jobs) <= 40:
                ax.text((s.start + s.end) / 2, y, s.job_id, ha="center", va="center", fontsize=7)
        for m, t in instance.available_from.items():
            if t > 0:
                y = machines.index(m)
                ax.barh(y, min(t, end), left=0, height=0.6, color="#f4cccc", edgecolor="#cc0000", hatch="xx")
        ax.set_yticks(range(len(machines)), machines)
        ax.invert_yaxis()
        ax.set_xlabel("seconds from the plan's start")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".html":
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
            svg = buf.getvalue()  # inline: no XML prolog or DOCTYPE inside the HTML page
            path.write_text(
                "<!doctype html><meta charset=utf-8><title>" + html.escape(title) + "</title>"
                "<body style='font-family:sans-serif'>" + svg[svg.index("<svg") :] + "</body>"
            )
        else:
            fig.savefig(path)
    finally:
        plt.close(fig)
    return path
