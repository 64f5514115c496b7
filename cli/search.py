"""``twin search "<query>"``: find alarms, anomalies and line events in Elasticsearch."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import typer

from cli.output import OutputFormat, write_rows
from twin.errors import ConfigError

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TABLE_COLUMNS = ("time", "kind", "machine_id", "line_id", "what", "state", "message", "details")
# Tools get the ids too, to follow a correlation_id into Cassandra or Kafka.
EXPORT_COLUMNS = (*TABLE_COLUMNS, "id", "correlation_id")


class Where(StrEnum):
    alarms = "alarms"
    anomalies = "anomalies"
    events = "events"
    all = "all"


def parse_time(text: str, *, now: datetime | None = None, option: str = "--since") -> datetime:
    """An ISO time (naive means UTC) or a duration back from now: ``90s``, ``30m``, ``1h``, ``2d``, ``1w``."""
    now = now or datetime.now(UTC)
    if text.strip().lower() == "now":
        return now
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"{option} {text!r}: use an ISO time (2025-11-24T08:00, UTC unless it says) or 30m, 1h, 2d"
        raise ConfigError(msg) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def search(
    query: str = typer.Argument(
        "", help='Words to find (all must match): "pressure low", "jam | blocked", "weld*", -cleared.'
    ),
    where: Where = typer.Option(Where.all, "--in", help="Which history to search."),
    active: bool = typer.Option(
        False, "--active", help="Only alarms active now (their latest state), whatever --in says."
    ),
    machine: str | None = typer.Option(None, "--machine", "-m", help="Only this machine (exact id)."),
    line: str | None = typer.Option(None, "--line", "-l", help="Only this line (exact id)."),
    since: str | None = typer.Option(None, "--since", help="From this time: ISO (UTC) or 30m, 1h, 2d back."),
    until: str | None = typer.Option(None, "--until", help="Before this time (same forms as --since)."),
    limit: int = typer.Option(20, "--limit", "-n", help="At most this many results, newest first."),
    fmt: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", help="table, csv or json (lines)."
    ),
    index_prefix: str | None = typer.Option(
        None, "--index-prefix", help="Index prefix (default: TWIN_ELASTICSEARCH__INDEX_PREFIX)."
    ),
) -> None:
    """Search alarms, anomalies and machine events indexed by `twin sink elasticsearch`."""
    from sinks.elasticsearch import CURRENT_ALARMS, KINDS
    from sinks.elasticsearch import search as run_search
    from twin.clients import elasticsearch
    from twin.settings import Settings

    now = datetime.now(UTC)
    start = parse_time(since, now=now, option="--since") if since else None
    end = parse_time(until, now=now, option="--until") if until else None
    if start and end and end <= start:
        msg = f"--until ({end.isoformat()}) must be after --since ({start.isoformat()})"
        raise ConfigError(msg)
    if not 1 <= limit <= 10_000:
        msg = f"--limit must be between 1 and 10000, got {limit}"
        raise ConfigError(msg)
    kinds = [CURRENT_ALARMS] if active else list(KINDS) if where is Where.all else [where.value]

    settings = Settings()
    cfg = settings.elasticsearch
    # One quick attempt: a person is waiting, and the error line says what is wrong.
    client = elasticsearch(settings, request_timeout=min(cfg.request_timeout_s, 15.0), max_retries=0)
    try:
        rows = run_search(
            client,
            query,
            index_prefix=index_prefix or cfg.index_prefix,
            kinds=kinds,
            machine=machine,
            line=line,
            since=start,
            until=end,
            active_only=active,
            limit=limit,
        )
    finally:
        client.close()
    if not rows:
        typer.echo("no matches", err=fmt is not OutputFormat.table)
        return
    columns = TABLE_COLUMNS if fmt is OutputFormat.table else EXPORT_COLUMNS
    write_rows(rows, columns, fmt, title=f"{len(rows)} newest matches" if len(rows) == limit else None)
