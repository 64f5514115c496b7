"""`twin demo`, the main job, runs end to end against the real stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.main import get_command

from cli.app import app
from localstack import Infra
from sim import load_factory


@pytest.fixture(scope="module")
def demo_out(stack: Infra) -> str:
    """The output of one short demo run (the default factory, 4 s at 120x, no serving after)."""
    out = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--duration", "4", "--speed", "120", "--no-serve"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_demo_streams_the_line_and_reads_everything_back(demo_out: str) -> None:
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
            r"(factory\.\w+)\s+acked\s+([\d,]+)\s+on broker\s+([\d,]+)\s+decoded\s+([\d,]+)", demo_out
        )
    )
    assert set(rows) == {"factory.telemetry", "factory.production", "factory.state"}
    for acked, on_broker, decoded in rows.values():
        assert acked == on_broker == decoded
    assert rows["factory.telemetry"][0] > 0 and rows["factory.production"][0] > 0
    # The sinks wrote this run's history before the demo ended; search finds it.
    assert "history written" in demo_out
    searchable = re.search(r"Elasticsearch: ([\d,]+) alarms, anomalies and machine events", demo_out)
    assert searchable is not None and int(searchable.group(1).replace(",", "")) > 0
    for server in ("kafka", "registry", "cassandra", "elasticsearch"):
        assert server in demo_out
    # The gateway served the live view during the run (URL with a dev token) and holds every machine.
    assert re.search(r"http://127\.0\.0\.1:\d+/#token=[\w-]+\.[\w-]+\.[\w-]+", demo_out), demo_out
    live = re.search(r"gateway: (\d+) of (\d+) layout machines live", demo_out)
    assert live is not None and int(live.group(1)) == int(live.group(2)) == 5, demo_out


def test_closing_hints_name_the_demo_machines_in_commands_that_work(demo_out: str) -> None:
    hinted = _hinted_commands(demo_out)
    assert any(argv[:2] == ["query", "kpis"] for argv in hinted), demo_out
    factory = load_factory()  # the demo's factory
    machines = {s.id for line in factory.lines for s in line.stations}
    named = [argv[i + 1] for argv in hinted for i, arg in enumerate(argv[:-1]) if arg in ("--machine", "-m")]
    assert named, demo_out
    assert set(named) <= machines, f"hints name {set(named) - machines}, the factory has {sorted(machines)}"
    for argv in hinted:
        _parse(argv)
    # The KPI hint, run as printed, shows that machine's windows of this run (its stretch of the
    # past: ending now, or before earlier runs of the line on this machine), none from the future.
    kpis = next(argv for argv in hinted if argv[:2] == ["query", "kpis"])
    asked = datetime.now(UTC)
    out = subprocess.run(
        [sys.executable, "-m", "cli", *kpis], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    machine = kpis[kpis.index("--machine") + 1]
    starts = re.findall(rf"│ (\S+) +│ {re.escape(machine)} +│ 60 ", out.stdout)
    assert starts, out.stdout
    assert max(datetime.fromisoformat(t) for t in starts) <= asked, out.stdout


def test_a_hint_with_an_unknown_flag_or_command_fails_the_check() -> None:
    _parse(["query", "kpis", "--machine", "cnc-1", "--since", "1h"])
    with pytest.raises(Exception, match="No such option: --machine-id"):
        _parse(["query", "kpis", "--machine-id", "cnc-1"])
    with pytest.raises(AssertionError):
        _parse(["query", "machines"])


def _hinted_commands(out: str) -> list[list[str]]:
    """Every ``twin ...`` command in the demo's closing "Where to look" block, as argv after ``twin``
    (a ``<placeholder>`` filled in)."""
    block = out.split("Where to look:", 1)[1].split("\nServers keep running", 1)[0]
    commands = re.findall(r"(?<![\w./-])twin ((?:[^()\s]| (?! ))+)", block)
    return [re.sub(r"<\w+>", "kafka", c).replace('"', "").split() for c in commands]


def _parse(argv: list[str]) -> None:
    """Parse ``twin *argv`` as the CLI does, without running it: click raises on an unknown option."""
    command: Any = get_command(app)  # typer's own (vendored) click types
    name, args = "twin", list(argv)
    while hasattr(command, "list_commands"):  # a group: the next word names a sub-command
        name, *args = args
        sub = command.get_command(command.context_class(command), name)
        assert sub is not None, f"twin has no command {' '.join(argv)!r}"
        command = sub
    command.make_context(name, args)
