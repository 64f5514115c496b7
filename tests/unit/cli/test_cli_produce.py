"""``twin produce --from-file`` checks its file before it binds the metrics port or touches Kafka."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something already listens on: a metrics server started first would fail on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def produce(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    # Nothing answers here: a command that reached for Kafka would say so instead.
    env = {**clean, "PYTHONPATH": str(ROOT), "TWIN_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    return subprocess.run(
        [sys.executable, "-m", "cli", "produce", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.jsonl", None, "no such file"),
        ("recording.txt", "hello\n", "unsupported file type '.txt'"),
        ("no-time.csv", "when,pressure\n1,2\n", "no time column 'time'"),
        ("no-machine.csv", "time,pressure\n1,2\n", "--machine-id"),
    ],
)
def test_a_bad_file_is_one_line_and_the_metrics_port_is_never_bound(
    tmp_path: Path, taken_port: int, name: str, content: str | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    done = produce("--from-file", str(path), "--metrics-port", str(taken_port), cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert reason in lines[0] and name in lines[0]
    assert "metrics port" not in done.stderr and "Kafka" not in done.stderr
    assert "metrics on" not in done.stdout


def test_an_unknown_topic_is_refused_before_anything_starts(tmp_path: Path, taken_port: int) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("{}\n")
    done = produce(
        "--from-file", str(path), "--topic", "no.such.topic", "--metrics-port", str(taken_port), cwd=tmp_path
    )
    assert done.returncode == 1
    assert "unknown topic 'no.such.topic'" in done.stderr and "metrics port" not in done.stderr
