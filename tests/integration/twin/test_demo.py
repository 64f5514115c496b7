"""`twin demo`, the main job, runs end to end against the real stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from twin.infra import Infra


def test_demo_streams_the_line_and_reads_everything_back(stack: Infra) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "twin", "demo", "--duration", "4", "--speed", "120", "--no-serve"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = dict(
        (
            m.group(1),
            (
                int(m.group(2).replace(",", "")),
                int(m.group(3).replace(",", "")),
                int(m.group(4).replace(",", "")),
            ),
        )
        for m in re.finditer(
            r"(factory\.\w+)\s+acked\s+([\d,]+)\s+on broker\s+([\d,]+)\s+decoded\s+([\d,]+)", out.stdout
        )
    )
    assert set(rows) == {"factory.telemetry", "factory.production", "factory.state"}
    for acked, on_broker, decoded in rows.values():
        assert acked == on_broker == decoded
    assert rows["factory.telemetry"][0] > 0 and rows["factory.production"][0] > 0
    # The sinks wrote this run's history before the demo ended; search finds it.
    assert "history written" in out.stdout
    searchable = re.search(r"Elasticsearch: ([\d,]+) alarms, anomalies and machine events", out.stdout)
    assert searchable is not None and int(searchable.group(1).replace(",", "")) > 0
    for server in ("kafka", "registry", "cassandra", "elasticsearch"):
        assert server in out.stdout
    # The gateway served the live view during the run (URL with a dev token) and holds every machine.
    assert re.search(r"http://127\.0\.0\.1:\d+/#token=[\w-]+\.[\w-]+\.[\w-]+", out.stdout), out.stdout
    live = re.search(r"gateway: (\d+) of (\d+) layout machines live", out.stdout)
    assert live is not None and int(live.group(1)) == int(live.group(2)) == 5, out.stdout
