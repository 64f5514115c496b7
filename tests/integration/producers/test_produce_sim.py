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


def test_sped_up_runs_end_by_now_never_overlap_and_a_retry_repeats_its_ids(
    stack: Infra, settings: Settings, tmp_path: Path
) -> None:
    """--speed 600 for 3 s is 30 simulated minutes: they end by the wall clock, not 30 min ahead. A
    second run right after covers the 30 minutes before the first (the same stretch twice would
    write its KPI windows twice); the first run retried (--run-id) sends the very same event ids."""
    from producers.runs import RunLog

    ids = [tmp_path / "first.txt", tmp_path / "retry.txt", tmp_path / "other.txt"]
    args = ("produce", "--speed", "600", "--duration", "3", "--seed", "7", "--metrics-port", "0")
    first = twin(*args, "--acked-ids", str(ids[0]))
    ended_ms = time.time() * 1000
    assert first.returncode == 0, first.stdout + first.stderr
    found = re.search(r"simulator run (\S+) \(seed 7\)", first.stdout)
    assert found is not None, first.stdout
    run_id = found.group(1)
    assert twin(*args, "--run-id", run_id, "--acked-ids", str(ids[1])).returncode == 0
    other = twin(*args, "--acked-ids", str(ids[2]))
    assert other.returncode == 0
    other_id = re.findall(r"simulator run (\S+) \(seed 7\)", other.stdout)[0]

    log = RunLog(settings.infra.root / "runs.jsonl")
    one, two = log.find(run_id), log.find(other_id)
    assert one is not None and two is not None
    assert one.end_ms - one.start_ms == two.end_ms - two.start_ms == 3 * 600 * 1000
    assert one.end_ms <= ended_ms and two.end_ms <= one.start_ms  # in the past, one after the other
    assert [s.run_id for s in log.stretches()].count(run_id) == 1  # the retry took the logged stretch
    first_ids, retry_ids, other_ids = (set(p.read_text().split()) for p in ids)
    assert first_ids and (first_ids <= retry_ids or retry_ids <= first_ids)  # the ids of one sequence
    assert not first_ids & other_ids


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
