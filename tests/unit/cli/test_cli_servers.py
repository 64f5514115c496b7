"""An unreachable broker or registry is one plain line: the address and the setting to change.

No servers needed: the addresses are ports nothing listens on.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def closed_port() -> int:
    """A port nothing listens on (bound and released: the kernel will not hand it out again soon)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Registry(BaseHTTPRequestHandler):
    """Answers every GET as a registry with no subjects would."""

    def do_GET(self) -> None:
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def registry_url() -> Iterator[str]:
    """A stand-in registry that answers, so only the broker is unreachable."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/apis/ccompat/v7"
    server.shutdown()
    server.server_close()


def twin(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,  # no stray .env
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_unreachable_broker_is_one_line_naming_it_and_its_setting(tmp_path: Path) -> None:
    address = f"127.0.0.1:{closed_port()}"
    done = twin("topics", "list", env={"TWIN_KAFKA__BOOTSTRAP_SERVERS": address}, cwd=tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot reach Kafka at {address}" in lines[0]
    assert "TWIN_KAFKA__BOOTSTRAP_SERVERS" in lines[0]
    assert "Exception" not in lines[0] and "transport" not in lines[0].lower()


def test_an_unreachable_registry_is_one_line_naming_it_and_its_setting(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/apis/ccompat/v7"
    done = twin("topics", "create", env={"TWIN_REGISTRY__URL": url}, cwd=tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot reach the schema registry at {url}" in lines[0]
    assert "TWIN_REGISTRY__URL" in lines[0]
    assert "Error" not in lines[0]


@pytest.mark.parametrize("command", [["process"], ["sink", "cassandra"], ["sink", "elasticsearch"]])
def test_long_running_commands_say_so_before_they_start(
    tmp_path: Path, registry_url: str, command: list[str]
) -> None:
    """Without the check they would start and retry forever in their own clients (Faust's, the
    sink's consumer), logging librdkafka's or aiokafka's words."""
    address = f"127.0.0.1:{closed_port()}"
    env = {
        "TWIN_KAFKA__BOOTSTRAP_SERVERS": address,
        "TWIN_REGISTRY__URL": registry_url,
        "TWIN_METRICS__ENABLED": "false",
    }
    done = twin(*command, "--no-create-topics", env=env, cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"error: cannot reach Kafka at {address} (set TWIN_KAFKA__BOOTSTRAP_SERVERS)"
    ]


@pytest.mark.parametrize("cause", ["kafka", "registry"])
def test_a_server_lost_after_the_check_is_still_one_line(
    cause: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The library's error, however deep under the command's own, becomes the same line."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.schema_registry import SchemaRegistryClient

    import pipelines.topics
    from cli import topics
    from cli.app import main
    from twin.errors import InfraError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TWIN_KAFKA__BOOTSTRAP_SERVERS", "b1.plant:9093")
    monkeypatch.setenv("TWIN_REGISTRY__URL", f"http://127.0.0.1:{closed_port()}/apis/ccompat/v7")
    monkeypatch.setattr(topics, "require", lambda *_args, **_kw: None)

    def lost(*_args: object) -> dict[str, int]:
        if cause == "kafka":
            try:
                raise KafkaException(KafkaError(KafkaError._TRANSPORT))
            except KafkaException as exc:
                msg = "could not list topics"
                raise InfraError(msg) from exc
        with SchemaRegistryClient({"url": os.environ["TWIN_REGISTRY__URL"], "max.retries": 0}) as registry:
            registry.get_subjects()  # connection refused
        return {}

    monkeypatch.setattr(pipelines.topics, "broker_topics", lost)
    with pytest.raises(SystemExit) as exited:
        main(["topics", "list"])
    assert exited.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    if cause == "kafka":
        assert line == "error: cannot reach Kafka at b1.plant:9093 (set TWIN_KAFKA__BOOTSTRAP_SERVERS)"
    else:
        assert line.startswith("error: cannot reach the schema registry at http://127.0.0.1:")
