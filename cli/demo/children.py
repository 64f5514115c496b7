"""The demo's child processes (``python -m cli ...``): started in one place, stopped in one place.

Each child runs in a session of its own, so a Ctrl-C in the terminal reaches only the demo, which
then stops every child by PID (SIGTERM, then SIGKILL after its grace period). SIGTERM and SIGHUP to
the demo take the same way out, and a second Ctrl-C cannot cut the clean-up short: no child
outlives the demo.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from twin.errors import InfraError

_EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@dataclass
class Child:
    """One ``twin`` sub-command running as a child process, logging to ``log``."""

    label: str  # how messages name it: "twin sink cassandra"
    proc: subprocess.Popen[bytes]
    log: Path
    grace_s: float  # how long a SIGTERM gets before SIGKILL

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        """An InfraError naming the log if the child has exited (it should run until stopped)."""
        if not self.running():
            msg = f"{self.label} exited with {self.proc.returncode}; see {self.log}"
            raise InfraError(msg)


@dataclass
class Children:
    """Every child of one demo run; a context manager that leaves none running on the way out."""

    log_dir: Path
    started: list[Child] = field(default_factory=list)
    _previous: dict[int, Any] = field(default_factory=dict, init=False, repr=False)

    def start(
        self, label: str, args: list[str], log_name: str, *, grace_s: float = 30, fresh_log: bool = False
    ) -> Child:
        """``python -m cli *args`` with stdout and stderr in ``log_dir/log_name`` (appended unless
        ``fresh_log``: a log the demo reads must hold only this run)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / log_name
        with log.open("wb" if fresh_log else "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cli", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # out of reach of the terminal's Ctrl-C: the demo stops it
            )
        child = Child(label, proc, log, grace_s)
        self.started.append(child)
        return child

    def stop(self, *children: Child) -> None:
        """SIGTERM to each child at once, then wait for each; SIGKILL after its grace period."""
        for child in children:
            if child.running():
                with contextlib.suppress(ProcessLookupError):
                    child.proc.terminate()
        for child in children:
            try:
                child.proc.wait(child.grace_s)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait(10)

    def __enter__(self) -> Children:
        if _in_main_thread():
            for signum in _EXIT_SIGNALS:
                self._previous[signum] = signal.signal(signum, _exit_on_signal)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            with shielded():
                self.stop(*self.started)
        finally:
            _restore(self._previous)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP are ignored inside: a clean-up runs to its end."""
    previous: dict[int, Any] = {}
    if _in_main_thread():
        for signum in (signal.SIGINT, *_EXIT_SIGNALS):
            previous[signum] = signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        _restore(previous)


def _restore(handlers: dict[int, Any]) -> None:
    for signum, handler in handlers.items():
        if handler is not None:  # None: a handler not set from Python; leave that one
            signal.signal(signum, handler)
    handlers.clear()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # where signal handlers live


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    # Unwinds like Ctrl-C does, so every `finally` and the children's clean-up run.
    raise SystemExit(128 + signum)
