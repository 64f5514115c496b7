"""``twin process``: a stream-processing worker (anomalies, alarms, KPIs, twin state, schedule triggers)."""

from __future__ import annotations

from pathlib import Path

import typer


def process(
    rules: Path | None = typer.Option(
        None, "--rules", help="Alarm rules YAML (default: the built-in rules, see docs/alarms.md)."
    ),
    factory: Path | None = typer.Option(
        None,
        "--factory",
        help="Plant file or simulator layout (docs/plant.md): line order, states from signals, "
        "continuous machines' KPIs.",
    ),
    app_id: str | None = typer.Option(
        None, "--app-id", help="Faust app id = consumer group; workers with the same id share partitions."
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        help="Prometheus /metrics port (0: off). Default: TWIN_METRICS__PROCESS_PORT (9464).",
    ),
    create_topics: bool = typer.Option(
        True, "--create-topics/--no-create-topics", help="Create missing catalog topics and schemas first."
    ),
    log_level: str = typer.Option("WARNING", "--log-level", help="Worker log level."),
    start: str | None = typer.Option(
        None,
        "--from",
        help="Where the group starts: earliest, latest, or a time (ISO, or 30m/2h/1d back: what the "
        "broker received from then on). Default: its committed offsets; a new group replays its "
        "topics from the start. Said before it starts.",
    ),
) -> None:
    """Run one processing worker until Ctrl-C / SIGTERM. Start several (same --app-id) to share the load."""
    from twin.errors import ConfigError
    from twin.settings import Settings

    settings = Settings()
    ps = settings.processors
    if rules is not None:
        if not rules.is_file():
            msg = f"rules file not found: {rules}"
            raise ConfigError(msg)
        ps.rules_file = rules
    if factory is not None:
        if not factory.is_file():
            msg = f"factory file not found: {factory}"
            raise ConfigError(msg)
        ps.factory_file = factory
    if app_id:
        ps.app_id = app_id
    at_ms: int | None = None
    if start is not None and start not in ("earliest", "latest"):
        from cli.search import parse_time

        at_ms = int(parse_time(start, option="--from").timestamp() * 1000)

    from cli.metrics import start_metrics
    from cli.servers import require

    require(settings)  # before the worker's imports and clients: one line if a server is not there

    from pipelines.processing import Worker
    from pipelines.topics import ensure_topics
    from twin.topics import ALARM_COMMANDS, PRODUCTION, STATE, TELEMETRY, prefixed, topic

    if create_topics:
        ensure_topics(settings, prefixed(ps.topic_prefix))
    from pipelines.replay import plan_start

    read = [topic(name, ps.topic_prefix).name for name in (TELEMETRY, PRODUCTION, STATE, ALARM_COMMANDS)]
    begin = plan_start(settings, ps.app_id, read, start, at_ms)
    port = start_metrics(settings, "process", metrics_port)
    worker = Worker(settings)
    typer.echo(
        f"processing worker {ps.app_id}: reading {', '.join(read)}"
        + (f", metrics on :{port}/metrics" if port else "")
    )
    typer.echo(begin.describe(ps.app_id, start))
    worker.run(loglevel=log_level)
