"""``twin sink cassandra|elasticsearch``: keep history in Cassandra, make alarms and events searchable."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from sinks.base import Sink
    from twin.settings import Settings

app = typer.Typer(
    help="Write the twin's topics to Cassandra (history) or Elasticsearch (search), with no loss.",
    no_args_is_help=True,
)

_GROUP = typer.Option(None, "--group", help="Consumer group (default: <TWIN_SINKS__GROUP_PREFIX>-<sink>).")
_METRICS = typer.Option(
    None,
    "--metrics-port",
    help="Prometheus /metrics port (0: off). Default: TWIN_METRICS__SINK_CASSANDRA_PORT (9465) or "
    "TWIN_METRICS__SINK_ELASTICSEARCH_PORT (9466).",
)
_CREATE = typer.Option(
    True, "--create-topics/--no-create-topics", help="Create missing catalog topics first."
)
_LOG = typer.Option("INFO", "--log-level", help="Log level of the sink.")


@app.command("cassandra")
def cassandra(
    keyspace: str | None = typer.Option(
        None, "--keyspace", help="Keyspace (default: TWIN_CASSANDRA__KEYSPACE)."
    ),
    group: str | None = _GROUP,
    metrics_port: int | None = _METRICS,
    create_topics: bool = _CREATE,
    log_level: str = _LOG,
) -> None:
    """Store telemetry, production, states, anomalies, alarms, KPIs and plans in Cassandra.

    Run `twin db migrate` once first. Offsets are committed only after rows are written; while
    Cassandra is down the sink pauses and resumes by itself.
    """
    from sinks.cassandra import CassandraSink
    from twin.settings import Settings

    settings = Settings()
    _run(settings, CassandraSink(settings, keyspace=keyspace), group, metrics_port, create_topics, log_level)


@app.command("elasticsearch")
def elasticsearch(
    index_prefix: str | None = typer.Option(
        None, "--index-prefix", help="Index prefix (default: TWIN_ELASTICSEARCH__INDEX_PREFIX)."
    ),
    group: str | None = _GROUP,
    metrics_port: int | None = _METRICS,
    create_topics: bool = _CREATE,
    log_level: str = _LOG,
) -> None:
    """Index alarms, anomalies and machine events in Elasticsearch (daily indices, with retention).

    Offsets are committed only after the bulk write succeeded item by item; while Elasticsearch is
    down the sink pauses and resumes by itself; documents it refuses go to the dead-letter topic.
    """
    from sinks.elasticsearch import ElasticsearchSink
    from twin.settings import Settings

    settings = Settings()
    sink = ElasticsearchSink(settings, index_prefix=index_prefix)
    _run(settings, sink, group, metrics_port, create_topics, log_level)


def _run(
    settings: Settings,
    sink: Sink,
    group: str | None,
    metrics_port: int | None,
    create_topics: bool,
    log_level: str,
) -> None:
    from cli.metrics import start_metrics
    from cli.servers import require
    from pipelines.sink_runner import SinkRunner
    from twin.logs import configure_logging

    require(settings)  # before logging is set up: one line, not the client library's retries
    configure_logging(log_level)
    if create_topics:
        from pipelines.topics import ensure_topics
        from twin.topics import prefixed

        prefix = settings.sinks.topic_prefix
        ensure_topics(settings, tuple(t for t in prefixed(prefix) if t.name[len(prefix) :] in sink.topics))
    port = start_metrics(settings, f"sink-{sink.name}", metrics_port)
    runner = SinkRunner(settings, sink, group_id=group)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    topics = ", ".join(runner.topics)
    typer.echo(
        f"{sink.name} sink (group {runner.group_id}): reading {topics}"
        + (f"; metrics on :{port}/metrics" if port else "")
    )
    stats = runner.run(stop)
    typer.echo(
        f"{sink.name} sink stopped: {stats.consumed} records read, {stats.written} written, "
        f"{stats.dead_lettered} dead-lettered, {stats.outages} outages ({stats.paused_s:.1f}s paused)"
    )
