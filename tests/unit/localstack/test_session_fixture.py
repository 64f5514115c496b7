"""The ``stack`` session fixture (tests/conftest.py): a server that cannot start fails the run, unless
the user asked to skip the integration tests instead; CI=true always fails."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_session(tmp_path: Path, *options: str, ci: bool) -> subprocess.CompletedProcess[str]:
    """One test that needs ``stack``, in a session whose local servers are not running (their ports
    are closed) and cannot be fetched (no Maven): ``Infra.up`` fails at once, with a TwinError."""
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_needs_servers.py").write_text("def test_it(stack):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_") and k != "CI"}
    env |= {
        "PYTHONPATH": str(ROOT),
        "TWIN_INFRA__STATE_DIR": str(tmp_path / "state"),
        "TWIN_INFRA__MAVEN": str(tmp_path / "no-maven"),
    }
    for server in ("KAFKA", "REGISTRY", "CASSANDRA", "ELASTICSEARCH"):
        env[f"TWIN_INFRA__{server}_PORT"] = str(closed_port())
    if ci:
        env["CI"] = "true"
    pytest_args = ["-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), *options]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_server_that_cannot_start_fails_the_run_without_ci(tmp_path: Path) -> None:
    done = run_session(tmp_path, ci=False)
    assert done.returncode == 1, done.stdout
    assert "1 error" in done.stdout and "skipped" not in done.stdout
    assert "local servers could not start" in done.stdout
    assert "--allow-missing-servers" in done.stdout  # the way out is named


def test_the_user_may_choose_to_skip_instead(tmp_path: Path) -> None:
    done = run_session(tmp_path, "--allow-missing-servers", ci=False)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout


@pytest.mark.parametrize("options", [(), ("--allow-missing-servers",)])
def test_in_ci_it_always_fails(tmp_path: Path, options: tuple[str, ...]) -> None:
    done = run_session(tmp_path, *options, ci=True)
    assert done.returncode == 1, done.stdout
    assert "1 error" in done.stdout and "CI=true" in done.stdout
