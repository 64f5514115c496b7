"""The whole local stack through the CLI, as a new user sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from localstack import Infra


def twin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_status_shows_four_healthy_servers_with_their_versions(stack: Infra) -> None:
    out = twin("infra", "status", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert set(rows) == {"kafka", "registry", "cassandra", "elasticsearch"}
    assert all(row["healthy"] for row in rows.values())
    # Versions come from the servers themselves where their protocol says (CQL, ES, registry).
    assert rows["cassandra"]["version"] == "5.0.9"
    assert rows["elasticsearch"]["version"] == "8.19.21"
    assert rows["registry"]["version"] == "3.3.3"
    assert rows["kafka"]["version"] == "3.9.2"


def test_up_on_a_healthy_stack_changes_nothing(stack: Infra) -> None:
    before = {s.name: s.pid for s in stack.status()}
    out = twin("infra", "up")
    assert out.returncode == 0, out.stderr
    assert "nothing to start" in out.stdout
    assert out.stdout.count("already healthy") == 4
    assert {s.name: s.pid for s in stack.status()} == before


def test_logs_shows_a_servers_log(stack: Infra) -> None:
    out = twin("infra", "logs", "kafka", "-n", "5")
    assert out.returncode == 0
    assert len(out.stdout.strip().splitlines()) == 5
    assert twin("infra", "logs", "mongodb").returncode == 1
