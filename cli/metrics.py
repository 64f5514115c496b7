"""``/metrics`` for long-running commands: a default port per command, one clear error when it is taken."""

from __future__ import annotations

from twin.errors import ConfigError
from twin.settings import Settings


def start_metrics(
    settings: Settings,
    component: str,
    metrics_port: int | None,
    addr: str = "0.0.0.0",  # noqa: S104 - scraped from other hosts
) -> int:
    """Serve Prometheus metrics for ``component`` (process, sink-cassandra, sink-elasticsearch,
    produce, schedule) on ``metrics_port`` (None: its ``TWIN_METRICS__*_PORT``); the port, 0 if off."""
    port = settings.metrics.port_for(component) if metrics_port is None else metrics_port
    if not port or not settings.metrics.enabled:
        return 0
    import prometheus_client

    try:
        prometheus_client.start_http_server(port, addr=addr)
    except OSError as exc:
        setting = "TWIN_METRICS__" + component.replace("-", "_").upper() + "_PORT"
        msg = (
            f"metrics port {port} is in use ({exc.strerror}); pass --metrics-port 0 or another port, "
            f"or set {setting}"
        )
        raise ConfigError(msg) from exc
    return port
