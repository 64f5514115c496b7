"""Pid files and process-group control for the servers ``twin infra`` starts."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil


@dataclass
class ProcessRecord:
    """What ``up`` wrote when it started a server; ``down`` only touches what a record names."""

    name: str
    pid: int
    create_time: float
    started_at: float
    version: str
    address: str
    argv: list[str] = field(default_factory=list)
    log: str = ""

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ProcessRecord | None:
        try:
            data = json.loads(path.read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def process(self) -> psutil.Process | None:
        """The live process this record names; None if it exited or the pid was reused."""
        try:
            proc = psutil.Process(self.pid)
            # A pid can be reused after a crash: the start time tells our process from a stranger.
            if abs(proc.create_time() - self.create_time) > 1.0:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def alive(self) -> bool:
        return self.process() is not None

    def rss_bytes(self) -> int:
        """Resident memory of the server and its children (some launchers fork the real JVM)."""
        proc = self.process()
        if proc is None:
            return 0
        total = 0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total


def stop_group(record: ProcessRecord, timeout_s: float) -> str:
    """SIGTERM the server's process group, wait, then SIGKILL. Returns 'stopped' or 'killed'."""
    proc = record.process()
    if proc is None:
        return "not running"
    pgid = _pgid(record.pid)
    _signal(record.pid, pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(record.pid, pgid):
            return "stopped"
        time.sleep(0.2)
    _signal(record.pid, pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _group_alive(record.pid, pgid):
        time.sleep(0.1)
    return "killed"


def _pgid(pid: int) -> int | None:
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return None
    # Servers are started in a session of their own, so their group id is their pid. Never signal
    # a group we did not create (e.g. the caller's own).
    return pgid if pgid == pid else None


def _signal(pid: int, pgid: int | None, sig: signal.Signals) -> None:
    try:
        if pgid is not None:
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pid: int, pgid: int | None) -> bool:
    if pgid is None:
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def port_owner(port: int) -> str | None:
    """A description of who listens on ``port`` on this machine, if anyone."""
    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.Error:
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid:
                try:
                    proc = psutil.Process(conn.pid)
                    return f"pid {conn.pid} ({proc.name()})"
                except psutil.Error:
                    return f"pid {conn.pid}"
            return "another process"
    return None
