from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from localstack.manager import _maven_reason, tail
from localstack.process import ProcessRecord, stop_group


def record_for(proc: subprocess.Popen[bytes], **changes: float) -> ProcessRecord:
    rec = ProcessRecord(
        name="x",
        pid=proc.pid,
        create_time=psutil.Process(proc.pid).create_time(),
        started_at=time.time(),
        version="1",
        address="here",
    )
    for key, value in changes.items():
        setattr(rec, key, value)
    return rec


def test_record_round_trips_through_its_file(tmp_path: Path) -> None:
    rec = ProcessRecord("kafka", 123, 1.5, 2.5, "3.9.2", "127.0.0.1:9092", ["java"], "/x.log")
    rec.save(tmp_path / "run" / "kafka.json")
    assert ProcessRecord.load(tmp_path / "run" / "kafka.json") == rec
    assert ProcessRecord.load(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert ProcessRecord.load(tmp_path / "bad.json") is None


def test_a_reused_pid_is_not_our_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        assert record_for(proc).alive()
        # Same pid, different start time: a stranger that got our old pid. Never signal it.
        stranger = record_for(proc, create_time=psutil.Process(proc.pid).create_time() - 100)
        assert not stranger.alive()
        assert stop_group(stranger, 1) == "not running"
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_stop_group_terminates_the_whole_group() -> None:
    # A parent that forks a child, like Elasticsearch's launcher: both must go.
    script = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.PIPE)
    assert (
        proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    )  # child started (a loaded CI box is slow)
    children = psutil.Process(proc.pid).children()
    assert len(children) == 1
    assert stop_group(record_for(proc), 10) == "stopped"
    proc.wait(5)
    proc.stdout.close()
    children[0].wait(5)
    assert not children[0].is_running()


def test_stop_group_escalates_to_sigkill() -> None:
    script = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"  # SIGTERM is ignored from here on
    assert stop_group(record_for(proc), 0.5) == "killed"
    assert proc.wait(5) == -9
    proc.stdout.close()


def test_tail_reads_the_end_of_big_files(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    assert tail(log, 3) == ["line 99997", "line 99998", "line 99999"]
    assert tail(tmp_path / "none.log", 3) == []


def test_maven_reason_is_the_first_real_error(tmp_path: Path) -> None:
    log = tmp_path / "fetch.log"
    log.write_text(
        "[INFO] Scanning for projects...\n"
        "[ERROR] Failed to execute goal on project twin-infra-kafka: Could not resolve dependencies\n"
        "[ERROR] -> [Help 1]\n"
    )
    assert _maven_reason(log).startswith("Failed to execute goal on project twin-infra-kafka")
