"""Shift calendars: periods, scheduled segments, breaks, planned downtime, time zones; and the
report command's time words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.spark import when
from jobs.spark.calendar import ShiftCalendar
from twin.errors import ConfigError

D = datetime(2026, 12, 8, tzinfo=UTC)


def hours(p: object) -> float:
    return p.scheduled_s / 3600  # type: ignore[attr-defined,no-any-return]


def test_the_default_calendar_covers_the_day_with_three_shifts_and_the_night_before() -> None:
    periods = ShiftCalendar.default().periods(D, D + timedelta(days=1))
    names = [(p.period, p.kind, hours(p)) for p in periods]
    assert ("2026-12-08", "day", 24) in names
    # The night shift of the 7th reaches into the 8th (00:00-06:00); the 8th's C shift is clipped.
    assert [n for n in names if n[1] == "shift"] == [
        ("2026-12-07/C", "shift", 6),
        ("2026-12-08/A", "shift", 8),
        ("2026-12-08/B", "shift", 8),
        ("2026-12-08/C", "shift", 2),
    ]


def test_a_range_ending_now_clips_the_day(tmp_path: Path) -> None:
    periods = ShiftCalendar.default().periods(D, D + timedelta(hours=10, minutes=30))
    day = next(p for p in periods if p.kind == "day")
    assert (day.end - day.start, hours(day)) == (timedelta(hours=10, minutes=30), 10.5)


def test_breaks_weekends_and_planned_downtime_are_not_scheduled(tmp_path: Path) -> None:
    path = tmp_path / "cal.yaml"
    path.write_text(
        "name: two shifts, weekdays\ntimezone: Europe/Berlin\ndays: [mon, tue, wed, thu, fri]\n"
        "shifts:\n  - {name: E, start: '06:00', end: '14:00'}\n  - {name: L, start: '14:00', end: '22:00'}\n"
        "breaks:\n  - {start: '10:00', end: '10:30'}\n  - {shift: L, start: '18:00', end: '18:30'}\n"
        "planned_downtime:\n  - {start: '2026-12-09T06:00:00', end: '2026-12-09T14:00:00', lines: [line-1]}\n"
    )
    cal = ShiftCalendar.load(path)
    tue, wed, sat = D, D + timedelta(days=1), D + timedelta(days=4)  # 2026-12-08 is a Tuesday
    by = {
        (p.period, p.kind): p
        for p in cal.periods(tue - timedelta(hours=1), sat + timedelta(days=1), "line-1")
    }
    assert hours(by["2026-12-08/E", "shift"]) == 7.5  # the 10:00 break
    assert hours(by["2026-12-08/L", "shift"]) == 7.5  # its own 18:00 break
    assert hours(by["2026-12-08", "day"]) == 15
    assert hours(by["2026-12-09/E", "shift"]) == 0  # planned downtime for line-1
    assert ("2026-12-12/E", "shift") not in by  # Saturday
    assert hours(by["2026-12-12", "day"]) == 0
    # Local time: the early shift starts at 06:00 in Berlin, 05:00 UTC.
    assert by["2026-12-08/E", "shift"].start.astimezone(UTC).hour == 5
    other = {(p.period, p.kind): p for p in cal.periods(wed, wed + timedelta(days=1), "line-2")}
    assert hours(other["2026-12-09/E", "shift"]) == 7.5


def test_a_bad_calendar_is_one_line_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("shifts:\n  - {name: A, start: '25:00', end: '06:00'}\n")
    with pytest.raises(ConfigError, match=r"shifts\[0\]\.start") as exc:
        ShiftCalendar.load(path)
    assert "\n" not in str(exc.value)
    path.write_text("timezone: Mars/Olympus\nshifts:\n  - {name: A, start: '06:00', end: '14:00'}\n")
    with pytest.raises(ConfigError, match="unknown time zone"):
        ShiftCalendar.load(path)
    with pytest.raises(ConfigError, match="empty"):
        ShiftCalendar.default().periods(D, D)


def test_report_time_words() -> None:
    now = datetime(2026, 12, 8, 15, 30, tzinfo=UTC)
    assert when("today", now=now) == datetime(2026, 12, 8, tzinfo=UTC)
    assert when("yesterday", now=now) == datetime(2026, 12, 7, tzinfo=UTC)
    assert when("2026-12-01", "Europe/Berlin", now=now) == datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert when("2h", now=now) == datetime(2026, 12, 8, 13, 30, tzinfo=UTC)
    assert when("now", now=now) == now
    with pytest.raises(ConfigError):
        when("2026-13-45", now=now)
