"""``twin gateway``: stream the live twin to WebXR clients over websockets, with a REST API."""

from __future__ import annotations

import ipaddress

import typer


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
    gw.allowed_origins = [*gw.allowed_origins, *origins]

    from xr_gateway.auth import Role, TokenVerifier

    if gw.dev_mode:
        if not _loopback(gw.host):
            msg = f"dev mode hands out tokens: bind it to a loopback host, not {gw.host!r}"
            raise ConfigError(msg)
        verifier = TokenVerifier.for_dev(gw)
        # The Vite dev server of the WebXR client, and pages the gateway itself might serve.
        for origin in ("http://localhost:5173", "http://127.0.0.1:5173", f"http://{gw.host}:{gw.port}"):
            if origin not in gw.allowed_origins:
                gw.allowed_origins.append(origin)
    else:
        verifier = TokenVerifier.from_settings(gw)  # ConfigError without a secret or key: one line

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

    base = f"http://{gw.host}:{gw.port}"
    typer.echo(f"gateway on ws://{gw.host}:{gw.port}/ws (REST {base}/docs, metrics {base}/metrics)")
    if gw.dev_mode:
        ttl = gw.dev_token_ttl_s
        typer.echo("DEV MODE: tokens below die with this process; never use dev mode in production")
        typer.echo(f"viewer token:   {verifier.mint('dev-viewer', Role.VIEWER, ttl)}")
        typer.echo(f"operator token: {verifier.mint('dev-operator', Role.OPERATOR, ttl)}")
        typer.echo(f"allowed origins: {', '.join(gw.allowed_origins)}")
    serve(create_app(settings, gw, verifier), gw, sock=sock, log_level=log_level.lower())


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
