"""`twin infra` as a user drives it: a private Kafka on free ports in its own state dir, through the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env.update(
        TWIN_INFRA__STATE_DIR=str(tmp_path / "state"),
        TWIN_INFRA__KAFKA_PORT=str(free_port()),
        TWIN_INFRA__KAFKA_CONTROLLER_PORT=str(free_port()),
    )
    yield env
    subprocess.run(
        [sys.executable, "-m", "cli", "infra", "down"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )


def twin(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def kafka_status(env: dict[str, str]) -> dict[str, object]:
    out = twin(env, "infra", "status", "--only", "kafka", "--json")
    return dict(json.loads(out.stdout)[0])


def test_kill_9_is_reported_and_up_recovers(private_env: dict[str, str]) -> None:
    first = twin(private_env, "infra", "up", "--only", "kafka")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "started kafka" in first.stdout
    status = kafka_status(private_env)
    assert status["healthy"] is True and status["state"] == "healthy"
    pid = int(str(status["pid"]))

    again = twin(private_env, "infra", "up", "--only", "kafka")
    assert again.returncode == 0
    assert "nothing to start" in again.stdout
    assert kafka_status(private_env)["pid"] == pid  # the same process: up twice changes nothing

    os.kill(pid, signal.SIGKILL)
    psutil.Process(pid).wait(timeout=30) if psutil.pid_exists(pid) else None
    down = twin(private_env, "infra", "status", "--only", "kafka")
    assert down.returncode == 3
    assert "kafka is down" in down.stdout and "last log lines" in down.stdout
    status = kafka_status(private_env)
    assert status["state"] == "down" and status["healthy"] is False
    assert status["last_lines"], "status should show the dead server's last log lines"

    back = twin(private_env, "infra", "up", "--only", "kafka")
    assert back.returncode == 0, back.stderr
    status = kafka_status(private_env)
    assert status["healthy"] is True and status["pid"] != pid

    stopped = twin(private_env, "infra", "down", "--only", "kafka")
    assert stopped.returncode == 0
    new_pid = int(str(status["pid"]))
    deadline = time.monotonic() + 5
    while psutil.pid_exists(new_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(new_pid) or psutil.Process(new_pid).status() == psutil.STATUS_ZOMBIE
    assert kafka_status(private_env)["state"] == "stopped"


def test_port_in_use_is_one_clear_line(private_env: dict[str, str]) -> None:
    port = int(private_env["TWIN_INFRA__KAFKA_PORT"])
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        out = twin(private_env, "infra", "up", "--only", "kafka")
    assert out.returncode == 1
    assert f"port {port} needed by kafka (broker) is already in use" in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unknown_server_and_bad_setting_are_one_line(private_env: dict[str, str]) -> None:
    out = twin(private_env, "infra", "up", "--only", "postgres")
    assert out.returncode == 1
    assert (
        out.stderr.strip()
        == "error: unknown server 'postgres'; choose from kafka, registry, cassandra, elasticsearch"
    )
    bad = twin({**private_env, "TWIN_INFRA__KAFKA_PORT": "ninety"}, "infra", "status")
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: invalid setting TWIN_INFRA__KAFKA_PORT")
    assert "Traceback" not in bad.stderr


def test_crash_at_start_shows_the_servers_last_lines(private_env: dict[str, str]) -> None:
    out = twin({**private_env, "TWIN_INFRA__KAFKA_HEAP": "lots"}, "infra", "up", "--only", "kafka")
    assert out.returncode == 1
    assert "error: kafka exited while starting with code 1; last log lines" in out.stderr
    assert "Invalid initial heap size" in out.stderr  # the JVM's own words, not a guess
    assert "Traceback" not in out.stderr


def test_health_timeout_is_reported(private_env: dict[str, str]) -> None:
    out = twin(private_env, "infra", "up", "--only", "kafka", "--timeout", "0.2")
    assert out.returncode == 1
    assert "kafka did not become healthy within 0.2s" in out.stderr


def test_missing_maven_is_one_line(private_env: dict[str, str]) -> None:
    out = twin({**private_env, "TWIN_INFRA__MAVEN": "mvn-not-installed"}, "infra", "fetch", "--only", "kafka")
    assert out.returncode == 1
    assert "Maven ('mvn-not-installed') is needed to fetch kafka" in out.stderr


def test_failed_fetch_names_maven_reason(private_env: dict[str, str], tmp_path: Path) -> None:
    # A real Maven run that cannot reach anything: offline with an empty local repository.
    fake = tmp_path / "mvn-offline"
    fake.write_text(f'#!/bin/sh\nexec mvn -o -Dmaven.repo.local={tmp_path / "empty-m2"} "$@"\n')
    fake.chmod(0o755)
    out = twin({**private_env, "TWIN_INFRA__MAVEN": str(fake)}, "infra", "fetch", "--only", "kafka")
    assert out.returncode == 1
    assert "could not fetch kafka 3.9.2 from Maven Central (mvn exit 1)" in out.stderr
    assert "offline" in out.stderr.lower()
