"""`twin demo`, the main job, runs end to end against the real stack."""

from __future__ import annotations

import os
import subprocess
import sys

from twin.infra import Infra


def test_demo_round_trips_avro_events_and_shows_status(stack: Infra) -> None:
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-m", "twin", "demo", "--events", "7"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "produced 7 events: 7 acked, 0 failed" in out.stdout
    assert "consumed and decoded 7/7 of this run's events" in out.stdout
    for server in ("kafka", "registry", "cassandra", "elasticsearch"):
        assert server in out.stdout
    assert "Servers keep running" in out.stdout
