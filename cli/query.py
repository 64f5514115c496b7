"""``twin query telemetry|kpis|alarms``: read the history the Cassandra sink keeps."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import typer

from cli.output import OutputFormat, write_rows
from twin.errors import ConfigError

if TYPE_CHECKING:
    from sinks.cassandra.queries import History

app = typer.Typer(
    help="Read history from Cassandra (what `twin sink cassandra` wrote): telemetry, KPIs, alarms.",
    no_args_is_help=True,
)

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_MACHINE = typer.Option(None, "--machine", "-m", help="Machine id (repeatable).")
_LINE = typer.Option(None, "--line", "-l", help="Line id: every machine of the line.")
_UNTIL = typer.Option(
    "now", "--until", help="End (exclusive): ISO time, or relative like 10m (= 10 minutes ago)."
)
_LIMIT = typer.Option(100, "--limit", "-n", min=1, help="Most rows to show (newest first).")
_FORMAT = typer.Option(
    OutputFormat.table, "--format", "-f", help="table for people; csv or json lines for tools."
)
_KEYSPACE = typer.Option(None, "--keyspace", help="Keyspace (default: TWIN_CASSANDRA__KEYSPACE).")


def parse_time(text: str, now: datetime | None = None) -> int:
    """Epoch millis of ``now``, an ISO time (naive = UTC) or a relative ``30m``/``1h``/``2d`` ago."""
    now = now or datetime.now(UTC)
    value = text.strip()
    if value == "now":
        return int(now.timestamp() * 1000)
    m = _RELATIVE.match(value)
    if m:
        ago = timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
        return int((now - ago).timestamp() * 1000)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        msg = (
            f"cannot read time {text!r}: use ISO (2026-01-31T08:00, UTC unless an offset is given) "
            "or relative: 30m, 1h, 2d"
        )
        raise ConfigError(msg) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _range(since: str, until: str) -> tuple[int, int]:
    start, end = parse_time(since), parse_time(until)
    if start >= end:
        msg = f"--since ({since}) must be before --until ({until})"
        raise ConfigError(msg)
    return start, end


@contextmanager
def _history(keyspace: str | None) -> Iterator[History]:
    from sinks.cassandra.connection import connect
    from sinks.cassandra.queries import History
    from sinks.cassandra.schema import Migrator
    from twin.settings import Settings

    settings = Settings()
    ks = keyspace or settings.cassandra.keyspace
    cluster, session = connect(settings)
    try:
        history = History(session, ks)
        if not Migrator(session, ks).keyspace_exists():
            msg = f"keyspace {ks} does not exist: run `twin db migrate` and `twin sink cassandra` first"
            raise ConfigError(msg)
        yield history
    finally:
        cluster.shutdown()


def _machines(history: History, machine: list[str] | None, line: str | None) -> list[str]:
    if machine:
        return machine
    if line:
        found = history.machines_of_line(line)
        if not found:
            msg = f"no machines of line {line!r} in the history yet"
            raise ConfigError(msg)
        return found
    msg = "say which machines: --machine ID (repeatable) or --line ID"
    raise ConfigError(msg)


def _done(n: int, fmt: OutputFormat, what: str) -> None:
    if fmt is OutputFormat.table and n == 0:
        typer.echo(f"no {what} in that range", err=True)


@app.command("telemetry")
def telemetry(
    machine: list[str] | None = _MACHINE,
    line: str | None = _LINE,
    since: str = typer.Option("1h", "--since", help="Start: ISO time, or relative like 1h, 30m, 2d."),
    until: str = _UNTIL,
    channel: list[str] | None = typer.Option(
        None,
        "--channel",
        "-c",
        help="Show these channels as columns (repeatable); default: all in one column.",
    ),
    limit: int = _LIMIT,
    fmt: OutputFormat = _FORMAT,
    keyspace: str | None = _KEYSPACE,
) -> None:
    """Sensor readings of machines, newest first."""
    start, end = _range(since, until)
    with _history(keyspace) as history:
        rows = history.telemetry(_machines(history, machine, line), since_ms=start, until_ms=end, limit=limit)
        columns = ["event_time", "machine_id", *(channel or ["channels"])]
        n = write_rows((_reading(r, channel, fmt) for r in rows), columns, fmt, title="telemetry")
    _done(n, fmt, "telemetry")


def _reading(row: Mapping[str, Any], channels: list[str] | None, fmt: OutputFormat) -> dict[str, Any]:
    values: Mapping[str, float] = row.get("channel_values") or {}
    units: Mapping[str, str] = row.get("channel_units") or {}
    out: dict[str, Any] = {"event_time": row["event_time"], "machine_id": row["machine_id"]}
    if channels:
        out.update({c: values.get(c) for c in channels})
    elif fmt is OutputFormat.table:
        out["channels"] = "  ".join(
            f"{name}={values[name]:.4g}{(' ' + units[name]) if units[name] else ''}"
            if name in values
            else f"{name}=-"
            for name in units
        )
    else:
        # A dropped sample (no value) stays visible as null.
        out["channels"] = {name: values.get(name) for name in units}
    return out


_KPI_COLUMNS = [
    "window_start",
    "scope_id",
    "window_s",
    "oee",
    "availability",
    "performance",
    "quality",
    "total_count",
    "good_count",
    "throughput_per_hour",
    "failures",
]


@app.command("kpis")
def kpis(
    machine: list[str] | None = _MACHINE,
    line: str | None = _LINE,
    scope: str | None = typer.Option(
        None, "--scope", help="line or machine (default: machine with --machine, line with --line)."
    ),
    window: str = typer.Option("1m", "--window", "-w", help="Window size: 1m, 1h, or seconds (60, 3600)."),
    since: str = typer.Option(
        "24h", "--since", help="Windows starting from: ISO time, or relative like 24h."
    ),
    until: str = _UNTIL,
    limit: int = _LIMIT,
    fmt: OutputFormat = _FORMAT,
    keyspace: str | None = _KEYSPACE,
) -> None:
    """OEE and KPI windows of a line or of machines, newest window first."""
    start, end = _range(since, until)
    window_s = _window_seconds(window)
    kind = (scope or ("machine" if machine else "line")).lower()
    if kind not in ("line", "machine"):
        msg = f"--scope is line or machine, not {scope!r}"
        raise ConfigError(msg)
    with _history(keyspace) as history:
        if kind == "line":
            if not line:
                msg = "line KPIs need --line ID (or --machine ID for machine KPIs)"
                raise ConfigError(msg)
            ids = [line]
        else:
            ids = _machines(history, machine, line)
        rows = history.kpis(kind.upper(), ids, window_s, since_ms=start, until_ms=end, limit=limit)
        n = write_rows(rows, _KPI_COLUMNS, fmt, title=f"{kind} KPIs, {window_s}s windows")
    _done(n, fmt, "KPI windows")


def _window_seconds(text: str) -> int:
    value = text.strip()
    if value.isdigit():
        return int(value)
    m = _RELATIVE.match(value)
    if m and m.group(2) != "ms":
        return int(float(m.group(1)) * _UNITS[m.group(2)])
    msg = f"--window takes a size like 1m, 1h or 3600, not {text!r}"
    raise ConfigError(msg)


# ``value`` and ``message`` are what raised the alarm (kept for its life), ``peak_value`` the worst
# value while it was active and ``clear_value`` the value it cleared at: read together they tell an
# operator what happened. Rows written before those columns existed show them empty.
_ALARM_COLUMNS = [
    "start_time",
    "machine_id",
    "alarm_type",
    "severity",
    "status",
    "value",
    "peak_value",
    "clear_value",
    "acked_by",
    "clear_time",
    "message",
    "details",  # the rule's condition and its own details (a runbook link, an action)
    "alarm_id",
]
_STATES = {
    "active": ("ACTIVE_UNACK", "ACTIVE_ACK"),
    "unack": ("ACTIVE_UNACK", "CLEARED_UNACK"),
    "cleared": ("CLEARED_UNACK", "CLEARED_ACK"),
    "all": ("ACTIVE_UNACK", "ACTIVE_ACK", "CLEARED_UNACK", "CLEARED_ACK"),
}


@app.command("alarms")
def alarms(
    machine: list[str] | None = _MACHINE,
    line: str | None = _LINE,
    state: str | None = typer.Option(
        None,
        "--state",
        help="active, unack, cleared, all, or a status (ACTIVE_UNACK, ...). "
        "Default: active; all when --machine or --line is given.",
    ),
    since: str | None = typer.Option(None, "--since", help="Alarms that started from: ISO or relative (1h)."),
    until: str | None = typer.Option(None, "--until", help="Alarms that started before: ISO or relative."),
    limit: int = _LIMIT,
    fmt: OutputFormat = _FORMAT,
    keyspace: str | None = _KEYSPACE,
) -> None:
    """Alarms with their latest state, newest first: active ones now, or a machine's or line's history."""
    statuses = _statuses(state, default_all=bool(machine or line))
    start = parse_time(since) if since else 0
    end = parse_time(until) if until else None
    with _history(keyspace) as history:
        if machine or (line and state is None):
            machines = _machines(history, machine, line)
            rows = history.alarms_of_machines(
                machines, statuses=statuses, since_ms=start, until_ms=end, limit=limit
            )
        else:
            # One partition read per status: how "what is active now" stays cheap.
            rows = history.alarms_by_status(statuses, line_id=line, since_ms=start, until_ms=end, limit=limit)
        n = write_rows(rows, _ALARM_COLUMNS, fmt, title="alarms")
    _done(n, fmt, "alarms")


def _statuses(state: str | None, *, default_all: bool) -> tuple[str, ...]:
    if state is None:
        return _STATES["all" if default_all else "active"]
    key = state.strip()
    if key.lower() in _STATES:
        return _STATES[key.lower()]
    if key.upper() in _STATES["all"]:
        return (key.upper(),)
    msg = f"--state takes active, unack, cleared, all or one of {', '.join(_STATES['all'])}; not {state!r}"
    raise ConfigError(msg)
