"""Steps on the servers themselves: bring them up, create topics, migrate Cassandra, show status."""

from __future__ import annotations

from cli.demo.run import DemoRun
from cli.infra import _table, console


def bring_up_stack(run: DemoRun) -> None:
    """``twin infra up``: start what is not running (a no-op for healthy servers)."""
    with console.status("bringing the stack up…"):
        run.infra.up()


def create_topics(run: DemoRun) -> None:
    """``twin topics create``: the catalog's topics and DLQs, their schemas registered (BACKWARD)."""
    from pipelines.topics import ensure_topics

    report = ensure_topics(run.settings)
    created = sum(line.startswith("created") for line in report)
    console.print(
        f"{len(report)} catalog items checked, {created} topics created; schemas registered (BACKWARD)"
    )


def migrate_history(run: DemoRun) -> None:
    """``twin db migrate``: the keyspace, tables and TTLs (a no-op when already there)."""
    from sinks.cassandra.connection import connect
    from sinks.cassandra.schema import Migrator, replication

    cassandra = run.settings.cassandra
    cluster, session = connect(run.settings)
    try:
        report = Migrator(session, cassandra.keyspace).migrate(
            replication_options=replication(cassandra.replication_factor), ttl_s=cassandra.ttl_s
        )
    finally:
        cluster.shutdown()
    new = ", ".join(m.label for m in report.applied) or "none"
    console.print(f"Cassandra keyspace {report.keyspace}: migrations applied now: {new}")


def show_status(run: DemoRun) -> None:
    """``twin infra status``."""
    console.print(_table(run.infra.status()))
