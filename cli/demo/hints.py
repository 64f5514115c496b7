"""The closing step: where to look, with commands that show this run on this run's machines."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from cli.demo.run import DemoRun
from cli.infra import console
from twin.settings import Settings

MINUTE_MS = 60_000


def closing_hints(run: DemoRun) -> None:
    """Addresses, logs, and history/search commands naming a machine of the factory that ran."""
    busiest = run.watcher.busiest() if run.watcher is not None else None
    console.print(
        where_to_look(
            run.settings,
            machine=busiest or run.machines[0],
            first_ms=run.started_ms,
            last_ms=max(run.last_event_ms, run.started_ms),
            speed=run.options.speed,
        ),
        soft_wrap=True,  # a command that wraps must still copy as one line
    )


def where_to_look(settings: Settings, *, machine: str, first_ms: int, last_ms: int, speed: float) -> str:
    """The closing text. The line's clock ran ``speed`` times faster than the wall clock, over a
    stretch of the past that no earlier run of the line covered (ending now if it could): the
    commands name that stretch explicitly.

    >>> text = where_to_look(Settings(), machine="cnc-1", first_ms=0, last_ms=125_000, speed=120)
    >>> [line.strip() for line in text.splitlines() if "kpis" in line]
    ['twin query kpis --machine cnc-1 --since 1970-01-01T00:00Z --until 1970-01-01T00:03Z']
    """
    s = settings
    since = _minute(first_ms)
    until = _minute(last_ms + MINUTE_MS)  # exclusive: the window holding the last event is in
    return (
        "\nWhere to look:\n"
        f"  Kafka            {s.kafka.bootstrap_servers}   (topics: twin topics list)\n"
        f"  Schema registry  {s.registry.url}\n"
        f"  Cassandra        {','.join(s.cassandra.contact_points)}:{s.cassandra.port}\n"
        f"  Elasticsearch    {s.elasticsearch.url}\n"
        f"  Logs             twin infra logs <server>   (files under {s.infra.root / 'logs'}; "
        "the demo's workers: demo-*.log)\n"
        f"  History          twin query alarms --since {since}\n"
        f"                   twin query kpis --machine {machine} --since {since} --until {until}\n"
        f"  Search           twin search --machine {machine} --since {since}\n"
        f"  Analytics        twin spark report --from {since} --to {until}   (HTML + CSV in reports/)\n"
        "  More events      twin produce --rate 5000 --duration 30\n"
        f"This run's events are stamped {since[-6:-1]} to {_minute(last_ms)[-6:-1]} UTC: the line ran "
        f"{speed:g}x faster than the clock, {_where(last_ms)}."
    )


def _where(last_ms: int) -> str:
    """Where the run's stretch lies: up to now, or before the runs that already covered that."""
    if time.time() * 1000 - last_ms < 5 * MINUTE_MS:
        return "up to now"
    return "in the past before the earlier runs of this line (.twin/runs.jsonl), so nothing is overwritten"


def _minute(ms: int) -> str:
    """ISO time of ``ms``, down to the minute, in UTC: what ``--since``/``--until`` read."""
    return datetime.fromtimestamp(ms // MINUTE_MS * 60, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")
