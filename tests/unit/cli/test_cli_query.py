"""``twin query alarms``: what raised an alarm, its worst value and the value it cleared at."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import query
from cli.app import app

START = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)


def alarm_row(**over: Any) -> dict[str, Any]:
    """A cleared HighVibration alarm, as ``History`` returns it (the alarms_by_* columns)."""
    row: dict[str, Any] = {
        "alarm_id": "5f0c9f3e-1f6a-4c57-9b47-1d2f3a4b5c6d",
        "machine_id": "cnc-1",
        "line_id": "line-1",
        "alarm_type": "HighVibration",
        "rule_id": "vibration-high",
        "severity": "MAJOR",
        "status": "CLEARED_UNACK",
        "start_time": START,
        "end_time": START,
        "ack_time": None,
        "acked_by": None,
        "clear_time": START,
        "cleared_by": "rule",
        "value": 7.5,
        "peak_value": 9.25,
        "clear_value": 2.28,
        "message": "Vibration 7.5 mm/s on cnc-1 (limit 4.5)",
        "details": {},
    }
    return row | over


class FakeHistory:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def alarms_of_machines(self, machines: Sequence[str], **_: Any) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def alarms_by_status(self, statuses: Sequence[str], **_: Any) -> Iterator[dict[str, Any]]:
        return iter(self.rows)


def run(monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, Any]], *args: str) -> str:
    @contextmanager
    def history(_keyspace: str | None) -> Iterator[FakeHistory]:
        yield FakeHistory(rows)

    monkeypatch.setattr(query, "_history", history)
    result = CliRunner().invoke(app, ["query", "alarms", "--machine", "cnc-1", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_json_has_the_raising_value_the_peak_and_the_clear_value(monkeypatch: pytest.MonkeyPatch) -> None:
    (line,) = run(monkeypatch, [alarm_row()], "--format", "json").splitlines()
    shown = json.loads(line)
    assert (shown["value"], shown["peak_value"], shown["clear_value"]) == (7.5, 9.25, 2.28)
    assert shown["message"] == "Vibration 7.5 mm/s on cnc-1 (limit 4.5)"


def test_the_table_shows_them_in_their_own_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    out = run(monkeypatch, [alarm_row()], "--format", "csv")
    header, values = out.splitlines()[:2]
    cells = dict(zip(header.split(","), values.split(","), strict=True))
    assert (cells["value"], cells["peak_value"], cells["clear_value"]) == ("7.5", "9.25", "2.28")
    table = run(monkeypatch, [alarm_row()])
    assert "9.25" in table and "2.28" in table and "peak_value" in table


def test_rows_without_them_still_show(monkeypatch: pytest.MonkeyPatch) -> None:
    """An active alarm has no clear value; a row written before the columns existed has neither."""
    old = alarm_row(status="ACTIVE_UNACK", clear_value=None, clear_time=None)
    del old["peak_value"], old["clear_value"]
    out = run(monkeypatch, [old, alarm_row(clear_value=None)], "--format", "json")
    first, second = (json.loads(line) for line in out.splitlines())
    assert (first["peak_value"], first["clear_value"]) == (None, None)
    assert second["clear_value"] is None and second["peak_value"] == 9.25
    assert "HighVibration" in run(monkeypatch, [old])
