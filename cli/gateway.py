"""``twin gateway``: stream the live twin to WebXR clients over websockets, with a REST API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

if TYPE_CHECKING:
    from twin.settings import GatewaySettings
    from xr_gateway.auth import TokenVerifier


def gateway(
    host: str | None = typer.Option(None, "--host", help="Interface to bind. Default: TWIN_GATEWAY__HOST."),
    port: int | None = typer.Option(None, "--port", help="HTTP/websocket port. Default: TWIN_GATEWAY__PORT."),
    dev: bool = typer.Option(
        False,
        "--dev",
        help="Local try-out: a random secret, a viewer and an operator token printed, the Vite dev "
        "server's origin allowed, /api/dev/token on. Loopback hosts only.",
    ),
    origins: list[str] = typer.Option(
        [],
        "--origin",
        help="Allow this browser Origin (repeatable), on top of TWIN_GATEWAY__ALLOWED_ORIGINS.",
    ),
    factory: Path | None = typer.Option(
        None,
        "--factory",
        help="Plant file or simulator layout the WebXR floor is drawn from. Default: the built-in line.",
    ),
    history: str | None = typer.Option(
        None,
        "--history",
        help="Where /api/alarms and /api/kpis read: memory (this process) or cassandra (the sinks' "
        "tables). Default: TWIN_GATEWAY__HISTORY.",
    ),
    create_topics: bool = typer.Option(
        True, "--create-topics/--no-create-topics", help="Create missing catalog topics and schemas first."
    ),
    log_level: str = typer.Option("WARNING", "--log-level", help="Gateway log level."),
) -> None:
    """Run the gateway until Ctrl-C / SIGTERM. Protocol and endpoints: docs/gateway.md."""
    from twin.errors import ConfigError
    from twin.logs import configure_logging
    from twin.settings import Settings

    settings = Settings()
    gw = settings.gateway.model_copy(deep=True)
    if host is not None:
        gw.host = host
    if port is not None:
        gw.port = port
    gw.dev_mode = gw.dev_mode or dev
    if factory is not None:
        gw.factory_file = factory
    if history is not None:
        gw.history = _history_choice(history)
    gw.allowed_origins = [*gw.allowed_origins, *origins]

    from xr_gateway.auth import Role

    verifier = _verifier(gw)

    from cli.servers import require

    require(settings)  # before logging is set up: one line, not the client library's retries
    configure_logging(log_level)
    if create_topics:
        from pipelines.topics import ensure_topics
        from twin.topics import prefixed

        ensure_topics(settings, prefixed(gw.topic_prefix))

    from xr_gateway.app import create_app
    from xr_gateway.server import bind, serve

    try:
        sock = bind(gw.host, gw.port)
    except OSError as exc:
        msg = f"cannot listen on {gw.host}:{gw.port} ({exc.strerror}); pass --port with a free port"
        raise ConfigError(msg) from exc

    port = sock.getsockname()[1]
    base = f"http://{gw.host}:{port}"
    typer.echo(f"gateway on ws://{gw.host}:{port}/ws (REST {base}/docs, metrics {base}/metrics)")
    if gw.dev_mode:
        ttl = gw.dev_token_ttl_s
        operator = verifier.mint("dev-operator", Role.OPERATOR, ttl)
        typer.echo("DEV MODE: tokens below die with this process; never use dev mode in production")
        typer.echo(f"viewer token:   {verifier.mint('dev-viewer', Role.VIEWER, ttl)}")
        typer.echo(f"operator token: {operator}")
        typer.echo(f"allowed origins: {', '.join(gw.allowed_origins)}")
        typer.echo(f"WebXR view (operator): {base}/#token={operator}")
    else:
        typer.echo(f"WebXR view: {base}/#token=<a viewer or operator JWT>")
    store = None
    if gw.history == "cassandra":
        from xr_gateway.history import CassandraHistory

        store = CassandraHistory.connect(settings)
    try:
        serve(create_app(settings, gw, verifier, history=store), gw, sock=sock, log_level=log_level.lower())
    finally:
        if store is not None:
            store.close()


def _history_choice(value: str) -> Literal["memory", "cassandra"]:
    from twin.errors import ConfigError

    if value == "memory":
        return "memory"
    if value == "cassandra":
        return "cassandra"
    msg = f"--history must be memory or cassandra, not {value!r}"
    raise ConfigError(msg)


def _verifier(gw: GatewaySettings) -> TokenVerifier:
    """Dev mode: a random secret and the local pages' origins allowed; else the configured keys."""
    from xr_gateway.app import check_dev_mode
    from xr_gateway.auth import TokenVerifier

    if not gw.dev_mode:
        return TokenVerifier.from_settings(gw)  # ConfigError without a secret or key: one line
    check_dev_mode(gw)  # create_app refuses it too; here it comes before any token is printed
    # The Vite dev server of the WebXR client, and the pages the gateway itself serves.
    host = f"[{gw.host}]" if ":" in gw.host else gw.host  # an IPv6 address in a URL has brackets
    pages = (f"http://{host}:{gw.port}", f"http://localhost:{gw.port}", f"http://127.0.0.1:{gw.port}")
    for origin in ("http://localhost:5173", "http://127.0.0.1:5173", *pages):
        if origin not in gw.allowed_origins:
            gw.allowed_origins.append(origin)
    return TokenVerifier.for_dev(gw)
