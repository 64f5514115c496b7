"""Shift calendars: the periods a report covers (days and shifts) and the scheduled stretches in
them (the shift minus its breaks and the calendar's planned downtime).

A calendar is a YAML file (``jobs/spark/calendars/default.yaml`` is the default: three 8-hour shifts,
every day, no breaks). Days run midnight to midnight in the calendar's time zone; a shift belongs to
the day it starts on (a 22:00-06:00 shift of the 8th is ``2026-12-08/C``). Periods are clipped to the
report's range, so a report of "today" ends now, not at midnight.

>>> cal = ShiftCalendar.default()
>>> [s.name for s in cal.shifts]
['A', 'B', 'C']
>>> p = cal.periods(datetime(2026, 12, 8, tzinfo=UTC), datetime(2026, 12, 9, tzinfo=UTC))
>>> [(x.period, x.kind) for x in p][:2]
[('2026-12-08', 'day'), ('2026-12-07/C', 'shift')]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from twin.errors import ConfigError, validated
from twin.plant import read_yaml

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_CALENDAR = Path(__file__).with_name("calendars") / "default.yaml"
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        msg = f"expected a time of day like 06:00, got {value!r}"
        raise ValueError(msg) from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _checked_clock(value: str) -> str:
    _clock(value)
    return value


Clock = Annotated[str, AfterValidator(_checked_clock)]
"""A time of day, ``HH:MM``."""


class Shift(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    start: Clock
    end: Clock

    def bounds(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        start = datetime.combine(day, _clock(self.start), tz)
        end_day = day if _clock(self.end) > _clock(self.start) else day + timedelta(days=1)
        return start, datetime.combine(end_day, _clock(self.end), tz)


class Break(_Model):
    shift: str | None = Field(default=None, description="only in this shift; default: whichever it falls in")
    start: Clock
    end: Clock


class Downtime(_Model):
    start: datetime
    end: datetime
    reason: str = "planned downtime"
    lines: list[str] | None = None


class ShiftCalendar(_Model):
    """A plant's working time (docs/analytics.md#shift-calendars)."""

    name: str = "custom"
    timezone: str = "UTC"
    operators: int = Field(default=1, ge=1)
    days: list[Day] = Field(default_factory=lambda: list(_DAYS))
    shifts: list[Shift] = Field(min_length=1)
    breaks: list[Break] = Field(default_factory=list)
    planned_downtime: list[Downtime] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone {v!r} (an IANA name like Europe/Berlin)"
            raise ValueError(msg) from None
        return v

    @field_validator("shifts")
    @classmethod
    def _distinct(cls, v: list[Shift]) -> list[Shift]:
        names = [s.name for s in v]
        if len(set(names)) != len(names):
            msg = f"shift names must be distinct, got {names}"
            raise ValueError(msg)
        return v

    @classmethod
    def load(cls, path: Path | None = None) -> ShiftCalendar:
        """The calendar in ``path`` (default: the shipped one); one ``ConfigError`` line if invalid."""
        source = path or DEFAULT_CALENDAR
        return validated(cls, read_yaml(source, "the shift calendar"), str(source), "shift calendar")

    @classmethod
    def default(cls) -> ShiftCalendar:
        return cls.load(None)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def periods(self, start: datetime, end: datetime, line_id: str = "") -> list[Period]:
        """The days and shifts overlapping [start, end), clipped to it, with their scheduled segments."""
        if end <= start:
            msg = f"the report range is empty: {start.isoformat()} is not before {end.isoformat()}"
            raise ConfigError(msg)
        tz = self.tz
        first = start.astimezone(tz).date() - timedelta(days=1)  # yesterday's night shift reaches in
        last = end.astimezone(tz).date()
        out: list[Period] = []
        shift_spans: list[tuple[str, datetime, datetime]] = []
        day = first
        while day <= last:
            d0 = datetime.combine(day, time(0), tz)
            d1 = datetime.combine(day + timedelta(days=1), time(0), tz)
            if _DAYS[day.weekday()] in self.days:
                for shift in self.shifts:
                    s0, s1 = shift.bounds(day, tz)
                    shift_spans.append((f"{day.isoformat()}/{shift.name}", s0, s1))
            if d1 > start and d0 < end:
                out.append(Period(day.isoformat(), "day", max(d0, start), min(d1, end), []))
            day += timedelta(days=1)
        working = [(p, s0, s1) for p, s0, s1 in shift_spans]
        for name, s0, s1 in working:
            if s1 > start and s0 < end:
                out.append(Period(name, "shift", max(s0, start), min(s1, end), []))
        # Scheduled stretches: the shifts, minus breaks and planned downtime, clipped per period.
        scheduled = _subtract([(s0, s1) for _, s0, s1 in working], self._stops(working, line_id))
        for p in out:
            p.segments.extend(
                (max(a, p.start), min(b, p.end)) for a, b in scheduled if b > p.start and a < p.end
            )
        out.sort(key=lambda p: (p.start, p.kind != "day", p.period))
        return out

    def _stops(
        self, shifts: list[tuple[str, datetime, datetime]], line_id: str
    ) -> list[tuple[datetime, datetime]]:
        tz = self.tz
        stops: list[tuple[datetime, datetime]] = []
        for name, s0, s1 in shifts:
            for b in self.breaks:
                if b.shift is not None and not name.endswith(f"/{b.shift}"):
                    continue
                for day in (s0.date(), s1.date()):
                    b0 = datetime.combine(day, _clock(b.start), tz)
                    b1 = datetime.combine(day, _clock(b.end), tz)
                    if b1 <= b0:
                        b1 += timedelta(days=1)
                    if b1 > s0 and b0 < s1:
                        stops.append((max(b0, s0), min(b1, s1)))
        for d in self.planned_downtime:
            if d.lines is None or line_id in d.lines:
                d0 = d.start if d.start.tzinfo else d.start.replace(tzinfo=tz)
                d1 = d.end if d.end.tzinfo else d.end.replace(tzinfo=tz)
                stops.append((d0, d1))
        return stops


@dataclass(slots=True)
class Period:
    period: str
    kind: str
    start: datetime
    end: datetime
    segments: list[tuple[datetime, datetime]]

    @property
    def scheduled_s(self) -> float:
        return sum((b - a).total_seconds() for a, b in self.segments)


def _union(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _subtract(
    spans: list[tuple[datetime, datetime]], holes: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """``spans`` (united) minus ``holes``."""
    out: list[tuple[datetime, datetime]] = []
    cuts = _union(holes)
    for a, b in _union(spans):
        at = a
        for h0, h1 in cuts:
            if h1 <= at or h0 >= b:
                continue
            if h0 > at:
                out.append((at, h0))
            at = max(at, h1)
        if at < b:
            out.append((at, b))
    return out


def periods_frames(
    spark: SparkSession, calendar: ShiftCalendar, line_ids: list[str], start: datetime, end: datetime
) -> tuple[DataFrame, DataFrame]:
    """The PERIODS and SEGMENTS frames (``jobs.spark.schema``) of ``line_ids`` over [start, end)."""
    from jobs.spark.schema import PERIODS, SEGMENTS

    periods: list[tuple[object, ...]] = []
    segments: list[tuple[object, ...]] = []
    for line_id in line_ids:
        for p in calendar.periods(start, end, line_id):
            periods.append((line_id, p.period, p.kind, _utc(p.start), _utc(p.end)))
            segments.extend((line_id, p.period, _utc(a), _utc(b)) for a, b in p.segments)
    return spark.createDataFrame(periods, PERIODS), spark.createDataFrame(segments, SEGMENTS)


def _utc(t: datetime) -> datetime:
    """Spark turns an aware datetime into its instant; keep them UTC so nothing depends on the host."""
    return t.astimezone(UTC)
