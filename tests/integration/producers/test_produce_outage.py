"""`twin produce` rides out a broker outage: kill -9 the broker for 10 s, lose nothing."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localstack import Infra
from tests.integration.producers.helpers import consume_all, twin
from twin.settings import Settings

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_broker_killed_for_10s_mid_run_loses_nothing(stack: Infra, tmp_path: Path) -> None:
    # A private broker (its own state dir and ports); the registry is the shared one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env.update(
        TWIN_INFRA__STATE_DIR=str(tmp_path / "state"),
        TWIN_INFRA__KAFKA_PORT=str(free_port()),
        TWIN_INFRA__KAFKA_CONTROLLER_PORT=str(free_port()),
        TWIN_REGISTRY__URL=Settings().registry.url,
    )
    private = Settings(
        infra={"state_dir": tmp_path / "state", "kafka_port": int(env["TWIN_INFRA__KAFKA_PORT"])},
        registry={"url": env["TWIN_REGISTRY__URL"]},
    )
    try:
        assert twin("infra", "up", "--only", "kafka", env=env).returncode == 0
        acked_file = tmp_path / "acked.txt"
        producer = subprocess.Popen(
            [sys.executable, "-m", "cli", "produce", "--rate", "2000", "--duration", "25",
             "--seed", "7", "--acked-ids", str(acked_file), "--metrics-port", "0"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(7)
        record = Infra(private).record(Infra(private).servers["kafka"])
        assert record is not None
        os.kill(record.pid, signal.SIGKILL)
        time.sleep(10)
        assert twin("infra", "up", "--only", "kafka", env=env).returncode == 0
        stdout, stderr = producer.communicate(timeout=300)
        assert producer.returncode == 0, stdout + stderr
        summary = stdout.split("done in ")[1]
        match = re.search(r"produced ([\d,]+), acked ([\d,]+), failed ([\d,]+)", summary)
        assert match is not None, summary
        produced, acked_count, failed = (int(g.replace(",", "")) for g in match.groups())
        assert acked_count == produced and failed == 0

        acked = set(acked_file.read_text().split())
        assert len(acked) == produced > 20_000
        topics = ["factory.telemetry", "factory.production", "factory.state"]
        seen = {str(r["event_id"]) for r in consume_all(private, topics)}
        assert acked <= seen  # every acknowledged event is on the broker after the outage
    finally:
        twin("infra", "down", "--only", "kafka", env=env)
