"""``/metrics`` for long-running commands: one port setting, one clear error when it is taken."""

from __future__ import annotations

from twin.errors import ConfigError
from twin.settings import Settings


def start_metrics(settings: Settings, metrics_port: int | None, addr: str = "0.0.0.0") -> int:  # noqa: S104 - scraped from other hosts
    """Serve Prometheus metrics on ``metrics_port`` (None: TWIN_METRICS__PORT); the port, 0 if off."""
    port = settings.metrics.port if metrics_port is None else metrics_port
    if not port or not settings.metrics.enabled:
        return 0
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=addr)
    except OSError as exc:
        msg = f"metrics port {port} is in use ({exc.strerror}); pass --metrics-port 0 or another port"
        raise ConfigError(msg) from exc
    return port
