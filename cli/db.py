"""``twin db migrate|status``: the Cassandra keyspace and tables, versioned and idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sinks.cassandra.schema import Migrator
    from twin.settings import Settings

app = typer.Typer(
    help="Cassandra schema for the history sink: versioned migrations, replication, TTLs.",
    no_args_is_help=True,
)

_KEYSPACE = typer.Option(None, "--keyspace", help="Keyspace (default: TWIN_CASSANDRA__KEYSPACE).")


@app.command("migrate")
def migrate(
    keyspace: str | None = _KEYSPACE,
    replication_factor: int | None = typer.Option(
        None,
        "--replication-factor",
        help="SimpleStrategy replication for a new keyspace (default: TWIN_CASSANDRA__REPLICATION_FACTOR).",
    ),
    datacenter: list[str] = typer.Option(
        [],
        "--datacenter",
        help="DC:N for NetworkTopologyStrategy, repeatable (e.g. --datacenter dc1:3 --datacenter dc2:3).",
    ),
) -> None:
    """Create the keyspace if missing, apply pending migrations, set table TTLs. Safe to run again."""
    from twin.settings import Settings

    settings = Settings()
    from sinks.cassandra.schema import replication

    rf = settings.cassandra.replication_factor if replication_factor is None else replication_factor
    options = replication(rf, _datacenters(datacenter))
    with _migrator(settings, keyspace) as migrator:
        report = migrator.migrate(replication_options=options, ttl_s=settings.cassandra.ttl_s)
    ks = report.keyspace
    if report.keyspace_created:
        typer.echo(f"created keyspace {ks} with replication {options}")
    for done in report.already:
        typer.echo(f"  {done.label}  already applied  {done.checksum[:12]}")
    for m in report.applied:
        typer.echo(f"  {m.label}  applied now      {m.checksum[:12]}")
    for table, old, new in report.ttl_changes:
        typer.echo(f"  ttl {table}: {_ttl(old)} -> {_ttl(new)} (applies to rows written from now on)")
    for note in report.notes:
        typer.echo(f"note: {note}")
    total = len(report.already) + len(report.applied)
    typer.echo(
        f"keyspace {ks} is at version {_latest(migrator)}: {total} migrations, {len(report.applied)} new"
    )


@app.command("status")
def status(keyspace: str | None = _KEYSPACE) -> None:
    """List applied and pending migrations of the keyspace, and its table TTLs."""
    from twin.settings import Settings

    settings = Settings()
    with _migrator(settings, keyspace) as migrator:
        if not migrator.keyspace_exists():
            typer.echo(f"keyspace {migrator.keyspace} does not exist; `twin db migrate` creates it")
            raise typer.Exit(1)
        applied = migrator.applied()
        pending = migrator.pending()
    for version in sorted(applied):
        done = applied[version]
        when = done.applied_at.isoformat(timespec="seconds") if done.applied_at else "?"
        typer.echo(f"  {done.label}  applied {when}  {done.checksum[:12]}")
    for m in pending:
        typer.echo(f"  {m.label}  PENDING")
    state = "up to date" if not pending else f"{len(pending)} pending: run `twin db migrate`"
    typer.echo(f"keyspace {migrator.keyspace}: {state}")
    if pending:
        raise typer.Exit(1)


@contextmanager
def _migrator(settings: Settings, keyspace: str | None) -> Iterator[Migrator]:
    """A connected Migrator; the connection closes on the way out."""
    from sinks.cassandra.connection import connect
    from sinks.cassandra.schema import Migrator, check_keyspace_name

    ks = check_keyspace_name(keyspace or settings.cassandra.keyspace)
    cluster, session = connect(settings)
    try:
        yield Migrator(session, ks)
    finally:
        cluster.shutdown()


def _datacenters(specs: list[str]) -> dict[str, int] | None:
    from twin.errors import ConfigError

    out: dict[str, int] = {}
    for spec in specs:
        name, _, n = spec.rpartition(":")
        if not name or not n.isdigit():
            msg = f"--datacenter takes DC:N (e.g. dc1:3), not {spec!r}"
            raise ConfigError(msg)
        out[name] = int(n)
    return out or None


def _ttl(seconds: int) -> str:
    if seconds == 0:
        return "forever"
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    return f"{seconds}s"


def _latest(migrator: Migrator) -> str:
    return f"{migrator.migrations[-1].version:04d}" if migrator.migrations else "0000"
