"""`twin produce` from the simulator: a plain Avro consumer gets every acked event, intact."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from localstack import Infra
from tests.integration.producers.helpers import consume_all, twin
from twin.settings import Settings

LINE = {"cnc-1", "press-1", "weld-1", "paint-1", "qc-1"}


def test_simulator_events_arrive_complete_with_labels(
    stack: Infra, settings: Settings, tmp_path: Path
) -> None:
    acked_file, labels = tmp_path / "acked.txt", tmp_path / "labels.jsonl"
    out = twin(
        "produce", "--rate", "3000", "--duration", "3", "--seed", "11",
        "--acked-ids", str(acked_file), "--labels", str(labels), "--metrics-port", "0",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert ", failed 0," in out.stdout and "unacknowledged 0" in out.stdout
    found = re.search(r"simulator run (\S+) \(seed 11\)", out.stdout)
    assert found is not None, out.stdout
    run = found.group(1)
    acked = set(acked_file.read_text().split())
    assert len(acked) > 3000

    records = {
        str(r["event_id"]): r
        for r in consume_all(settings, ["factory.telemetry", "factory.production", "factory.state"])
        if str(r["event_id"]) in acked
    }
    assert set(records) == acked  # count: every acknowledged event, once

    by_topic: dict[str, list[dict[str, object]]] = {}
    for r in records.values():
        by_topic.setdefault(str(r["_topic"]), []).append(r)
        assert r["_key"] == r["machine_id"] and r["machine_id"] in LINE
        assert r["correlation_id"] == str(r["event_id"]) and r["source"] == f"sim:{run}:line-1"
    assert set(by_topic) == {"factory.telemetry", "factory.production", "factory.state"}
    cnc = next(r for r in by_topic["factory.telemetry"] if r["machine_id"] == "cnc-1")
    units = {c["name"]: c["unit"] for c in cnc["channels"]}  # type: ignore[attr-defined]
    assert units["vibration_rms"] == "mm/s" and units["spindle_speed"] == "rpm"
    states = {r["state"] for r in by_topic["factory.state"]}
    assert states <= {"RUNNING", "IDLE", "STARVED", "BLOCKED", "DOWN", "SETUP"} and "RUNNING" in states
    part = by_topic["factory.production"][0]
    assert part["cycle_time_s"] > 0 and isinstance(part["good"], bool)  # type: ignore[operator]

    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert rows, "3000 events/s for 3 s is ~30 simulated minutes: the first labelled fault has begun"
    # Unlimited speed (--rate alone) fills the past day; no event may leave before its time (the
    # shared topics never hold the future).
    assert max(r["event_time"].timestamp() for r in records.values()) <= time.time()
    assert rows[0]["machine_id"] == "cnc-1" and rows[0]["kind"] == "bearing_wear"


def test_a_sped_up_run_ends_now_and_a_retry_repeats_its_ids(stack: Infra, tmp_path: Path) -> None:
    """--speed 600 for 3 s is 30 simulated minutes: they end at the wall clock, not 30 min ahead;
    the same run retried (--run-id) sends the very same event ids."""
    ids = [tmp_path / "first.txt", tmp_path / "retry.txt", tmp_path / "other.txt"]
    args = ("produce", "--speed", "600", "--duration", "3", "--seed", "7", "--metrics-port", "0")
    launched = time.time()
    first = twin(*args, "--acked-ids", str(ids[0]))
    ended = time.time()
    assert first.returncode == 0, first.stdout + first.stderr
    run = re.search(
        r"simulator run (\S+) \(seed 7\).* from (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", first.stdout
    )
    assert run is not None, first.stdout
    from datetime import UTC, datetime

    start = datetime.strptime(run.group(2), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    assert abs((launched - start) - 3 * 599) < 5  # 30 simulated minutes before it ended
    assert twin(*args, "--run-id", run.group(1), "--acked-ids", str(ids[1])).returncode == 0
    assert twin(*args, "--acked-ids", str(ids[2])).returncode == 0
    first_ids, retry_ids, other_ids = (set(p.read_text().split()) for p in ids)
    assert first_ids and (first_ids <= retry_ids or retry_ids <= first_ids)  # the ids of one sequence
    assert not first_ids & other_ids
    assert ended - launched < 60


def test_sigterm_flushes_and_reports(stack: Infra, tmp_path: Path) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    acked_file = tmp_path / "acked.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "produce", "--rate", "2000", "--acked-ids", str(acked_file), "--metrics-port", "0"],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(4)  # no --duration: it would run forever
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stdout + stderr
    match = re.search(r"produced ([\d,]+), acked ([\d,]+), failed 0, invalid 0, unacknowledged 0", stdout)
    assert match is not None, stdout
    produced, acked = (int(g.replace(",", "")) for g in match.groups())
    assert produced == acked > 0
    assert len(acked_file.read_text().split()) == acked  # every acked id was written before exit
