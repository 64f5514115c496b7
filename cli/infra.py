"""``twin infra``: the local Kafka, Cassandra, Elasticsearch and schema registry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from localstack import Infra, ServerStatus
from localstack.manager import tail
from twin.settings import Settings

app = typer.Typer(
    help="Run the local servers (Kafka, Cassandra, Elasticsearch, schema registry) without Docker.",
    no_args_is_help=True,
)
console = Console(highlight=False)
if not console.is_terminal:  # CI logs and pipes: do not squeeze the status table into 80 columns
    console = Console(highlight=False, width=140)

ONLY_HELP = "Comma-separated subset: kafka,registry,cassandra,elasticsearch."


def _only(value: str | None) -> list[str] | None:
    return [v for v in value.split(",") if v.strip()] if value else None


def _infra(settings: Settings | None = None) -> Infra:
    def event(server: str, message: str) -> None:
        console.print(f"[cyan]{server:>13}[/]  {message}")

    return Infra(settings or Settings(), on_event=event)


@app.command()
def up(
    only: str | None = typer.Option(None, "--only", help=ONLY_HELP),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds to wait for health (default: TWIN_INFRA__START_TIMEOUT_S)."
    ),
) -> None:
    """Fetch (first time), start and wait for the servers; a no-op for servers already healthy."""
    infra = _infra()
    begin = time.monotonic()
    with console.status("bringing the stack up…"):
        started = infra.up(_only(only), timeout_s=timeout)
    took = time.monotonic() - begin
    summary = f"started {', '.join(started)}" if started else "nothing to start"
    console.print(f"[green]ready[/] in {took:.1f}s ({summary})")


@app.command()
def down(only: str | None = typer.Option(None, "--only", help=ONLY_HELP)) -> None:
    """Stop the servers `up` started (SIGTERM, then SIGKILL after a grace period)."""
    _infra().down(_only(only))


@app.command()
def fetch(
    only: str | None = typer.Option(None, "--only", help=ONLY_HELP),
    force: bool = typer.Option(False, "--force", help="Fetch again even if present."),
) -> None:
    """Fetch server artifacts from Maven Central (cached in ~/.m2) without starting anything."""
    infra = _infra()
    with console.status("fetching artifacts…"):
        fetched = infra.fetch(_only(only), force=force)
    console.print(f"fetched {', '.join(fetched)}" if fetched else "all artifacts already present")


@app.command()
def status(
    only: str | None = typer.Option(None, "--only", help=ONLY_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show each server: healthy, version, address, pid, uptime, memory. Exit 3 if any is unhealthy."""
    statuses = _infra().status(_only(only))
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        console.print(_table(statuses))
        for s in statuses:
            if s.last_lines:
                console.print(f"[red]{s.name} is down[/]; last log lines:")
                for line in s.last_lines:
                    console.print(f"    {line}", markup=False)
    if not all(s.healthy for s in statuses):
        raise typer.Exit(3)


@app.command()
def logs(
    name: str = typer.Argument(..., help="kafka, registry, cassandra or elasticsearch."),
    lines: int = typer.Option(50, "--lines", "-n", help="How many lines to show."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
) -> None:
    """Print the last lines of a server's log."""
    path, last = _infra().logs(name, lines)
    if not path.exists():
        console.print(f"no log yet at {path}")
        raise typer.Exit(1)
    for line in last:
        typer.echo(line)
    if follow:
        _follow(path)


def _follow(path: Path) -> None:
    with path.open("r", errors="replace") as fh:
        fh.seek(0, 2)
        while True:
            line = fh.readline()
            if line:
                typer.echo(line, nl=False)
            else:
                time.sleep(0.3)


def _table(statuses: list[ServerStatus]) -> Table:
    table = Table(title="Factory Twin local servers")
    for column in ("server", "healthy", "state", "version", "address", "pid", "uptime", "rss"):
        table.add_column(column)
    for s in statuses:
        healthy = "[green]yes[/]" if s.healthy else "[red]no[/]"
        table.add_row(
            s.name,
            healthy,
            s.state,
            s.version or "-",
            s.address,
            str(s.pid) if s.pid else "-",
            _duration(s.uptime_s),
            f"{s.rss_bytes / 2**20:.0f} MiB" if s.rss_bytes else "-",
        )
    return table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


__all__ = ["app", "tail"]
