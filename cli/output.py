"""Rows to the terminal: a table for people, CSV or JSON lines for tools (``--format``)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Mapping):  # an alarm's details: 'channel: vibration_rms; runbook: https://...'
        return "; ".join(f"{k}: {_cell(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list | tuple | set):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def write_rows(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: OutputFormat = OutputFormat.table,
    *,
    title: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Write ``rows`` (only ``columns``, in that order); returns how many rows were written.

    CSV and JSON stream row by row, so a long history never sits in memory; the table needs all.
    """
    stream = out or sys.stdout
    n = 0
    if fmt is OutputFormat.json:
        for row in rows:
            stream.write(json.dumps({c: row.get(c) for c in columns}, default=_json_default) + "\n")
            n += 1
        return n
    if fmt is OutputFormat.csv:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
            n += 1
        return n
    table = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
        n += 1
    if n:  # the caller says "no matches" its own way
        # Piped output has no terminal width; 80 columns would fold every cell, so give it room.
        width = None if stream.isatty() else 200
        Console(file=stream, highlight=False, soft_wrap=False, width=width).print(table)
    return n
