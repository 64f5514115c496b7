"""``twin topics``: make the broker and the registry match the topic catalog."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.infra import console
from cli.servers import require
from twin.settings import Settings
from twin.topics import CATALOG, TELEMETRY, topic

app = typer.Typer(
    help="Create, list and describe the catalog's topics and their schemas.", no_args_is_help=True
)


@app.command()
def create(
    compatibility: str = typer.Option("BACKWARD", help="Registry compatibility level for each subject."),
) -> None:
    """Create every catalog topic and its DLQ (idempotent) and register their value schemas."""
    from pipelines.topics import ensure_topics

    settings = Settings()
    require(settings)
    for line in ensure_topics(settings, compatibility=compatibility):
        console.print(line)


@app.command("list")
def list_() -> None:
    """List catalog topics with their state on the broker and the registry."""
    from pipelines.topics import broker_topics

    settings = Settings()
    require(settings, registry=False)
    existing = broker_topics(settings)
    table = Table(title="Topic catalog")
    for column in ("topic", "key", "schema", "partitions", "retention", "cleanup", "on broker"):
        table.add_column(column)
    for t in CATALOG:
        on_broker = existing.get(t.name)
        table.add_row(
            t.name,
            t.key,
            t.value_schema,
            str(t.partitions),
            "compacted" if t.compacted else f"{t.retention_ms // 86_400_000} d",
            "compact" if t.compacted else "delete",
            f"yes ({on_broker} partitions)" if on_broker is not None else "[red]no[/]",
        )
    console.print(table)


@app.command()
def describe(name: str = typer.Argument(..., help=f"Topic name, e.g. {TELEMETRY}.")) -> None:
    """Show one topic: catalog entry, broker partitions and config, registered schema versions."""
    from pipelines.topics import describe_topic

    entry = topic(name)
    settings = Settings()
    require(settings)
    for key, value in describe_topic(settings, entry).items():
        console.print(f"[bold]{key:>18}[/]  {value}", markup=True)
