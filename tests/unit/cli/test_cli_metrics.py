"""``/metrics`` of the long-running commands: each on its own default port, the flag still wins."""

from __future__ import annotations

import socket
from pathlib import Path

import prometheus_client
import pytest

from cli.metrics import start_metrics
from twin.errors import ConfigError
from twin.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TWIN_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ports ``start_metrics`` asks prometheus_client to serve on (nothing is bound)."""
    ports: list[int] = []
    monkeypatch.setattr(prometheus_client, "start_http_server", lambda port, addr="": ports.append(port))
    return ports


def test_a_worker_and_both_sinks_on_one_machine_serve_on_different_ports(served: list[int]) -> None:
    settings = Settings()
    components = ("process", "sink-cassandra", "sink-elasticsearch", "produce")
    chosen = [start_metrics(settings, component, None) for component in components]
    assert served == chosen == [settings.metrics.port_for(c) for c in components]
    assert len(set(served)) == len(components)


def test_the_flag_wins_and_zero_turns_metrics_off(served: list[int]) -> None:
    settings = Settings()
    assert start_metrics(settings, "process", 19000) == 19000
    assert start_metrics(settings, "process", 0) == 0
    settings.metrics.enabled = False
    assert start_metrics(settings, "process", None) == 0
    assert served == [19000]


def test_a_taken_port_is_one_line_naming_the_flag_and_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            start_metrics(Settings(), "sink-cassandra", port, addr="127.0.0.1")
    message = str(caught.value)
    assert f"metrics port {port} is in use" in message
    assert "--metrics-port" in message and "TWIN_METRICS__SINK_CASSANDRA_PORT" in message
