"""``twin infra``: fetch, start, check and stop the local servers as child processes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localstack.java import Java, find_java
from localstack.process import ProcessRecord, port_owner, stop_group
from localstack.server import Server, port_open
from localstack.servers import SERVER_TYPES
from twin.errors import (
    ConfigError,
    FetchError,
    HealthTimeoutError,
    InfraError,
    PortInUseError,
    PrerequisiteError,
    ServerCrashedError,
)
from twin.settings import Settings

EventSink = Callable[[str, str], None]

# Env var that moves each port, for the "port in use" hint.
_PORT_SETTING = {
    ("kafka", "broker"): "TWIN_INFRA__KAFKA_PORT",
    ("kafka", "controller"): "TWIN_INFRA__KAFKA_CONTROLLER_PORT",
    ("cassandra", "native"): "TWIN_INFRA__CASSANDRA_PORT",
    ("cassandra", "storage"): "TWIN_INFRA__CASSANDRA_STORAGE_PORT",
    ("cassandra", "jmx"): "TWIN_INFRA__CASSANDRA_JMX_PORT",
    ("elasticsearch", "http"): "TWIN_INFRA__ELASTICSEARCH_PORT",
    ("elasticsearch", "transport"): "TWIN_INFRA__ELASTICSEARCH_TRANSPORT_PORT",
    ("registry", "http"): "TWIN_INFRA__REGISTRY_PORT",
    ("registry", "management"): "TWIN_INFRA__REGISTRY_MANAGEMENT_PORT",
}


@dataclass
class ServerStatus:
    name: str
    state: str  # healthy | starting | down | stopped | external | unreachable
    healthy: bool
    version: str | None
    address: str
    pid: int | None
    uptime_s: float | None
    rss_bytes: int | None
    managed: bool
    detail: str = ""
    last_lines: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (empty if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return data.splitlines()[-lines:] if lines > 0 else []


class Infra:
    """The local stack. Every method is safe to call repeatedly."""

    def __init__(self, settings: Settings, on_event: EventSink | None = None) -> None:
        self.settings = settings
        self.servers: dict[str, Server] = {name: cls(settings) for name, cls in SERVER_TYPES.items()}
        self._emit = on_event or (lambda _server, _message: None)
        # Servers this object started. Holding the handles lets a long-lived caller (the test
        # session) read exit codes and reap the processes on `down`, leaving no zombies behind.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # -- selection -----------------------------------------------------------------------------
    def select(self, only: Iterable[str] | None = None) -> list[Server]:
        if not only:
            return list(self.servers.values())
        names = [n.strip().lower() for n in only if n.strip()]
        unknown = [n for n in names if n not in self.servers]
        if unknown:
            msg = f"unknown server {unknown[0]!r}; choose from {', '.join(self.servers)}"
            raise ConfigError(msg)
        return [self.servers[n] for n in self.servers if n in names]

    def record(self, server: Server) -> ProcessRecord | None:
        return ProcessRecord.load(server.record_path)

    # -- fetch ---------------------------------------------------------------------------------
    def java_for(self, server: Server) -> Java:
        return find_java(server.name, server.java_min, server.java_max, self.settings.java_home)

    def fetch(self, only: Iterable[str] | None = None, *, force: bool = False) -> list[str]:
        """Fetch missing artifacts through Maven; returns the names fetched."""
        todo = [s for s in self.select(only) if force or not s.is_fetched()]
        for server in todo:
            self._fetch_one(server, self.java_for(server))
        return [s.name for s in todo]

    def _fetch_one(self, server: Server, java: Java) -> None:
        mvn = shutil.which(self.settings.infra.maven)
        if mvn is None:
            msg = (
                f"Maven ({self.settings.infra.maven!r}) is needed to fetch {server.name} from Maven "
                "Central but is not on PATH; install it, e.g. `apt-get install maven`"
            )
            raise PrerequisiteError(msg)
        dist_root = server.dist_dir.parent
        log = server.root / "logs" / f"fetch-{server.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self._emit(server.name, f"fetching {server.name} {server.version} from Maven Central")
        started = time.monotonic()
        if server.dist_dir.exists():
            shutil.rmtree(server.dist_dir)
        cmd = [
            mvn,
            "-B",
            "--no-transfer-progress",
            "-f",
            str(server.pom),
            f"-Dtwin.dist={dist_root}",
            f"-Dtwin.build={server.root / 'build' / server.name}",
            "package",
        ]
        env = {**os.environ, "JAVA_HOME": str(java.home)}
        with log.open("w") as out:
            try:
                proc = subprocess.run(
                    cmd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    timeout=self.settings.infra.fetch_timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                limit = self.settings.infra.fetch_timeout_s
                msg = f"fetching {server.name} artifacts timed out after {limit:.0f}s; see {log}"
                raise FetchError(msg) from None
        if proc.returncode != 0:
            reason = _maven_reason(log)
            msg = (
                f"could not fetch {server.name} {server.version} from Maven Central "
                f"(mvn exit {proc.returncode}): {reason}; full log: {log}"
            )
            raise FetchError(msg)
        server.fetched_marker.parent.mkdir(parents=True, exist_ok=True)
        server.fetched_marker.write_text(server.version + "\n")
        self._emit(server.name, f"fetched in {time.monotonic() - started:.1f}s")

    # -- up ------------------------------------------------------------------------------------
    def up(self, only: Iterable[str] | None = None, *, timeout_s: float | None = None) -> list[str]:
        """Start what is not healthy yet and wait until everything selected is healthy.

        Returns the names of servers started by this call. Servers already healthy are left alone.
        """
        timeout = timeout_s if timeout_s is not None else self.settings.infra.start_timeout_s
        selected = self.select(only)
        to_start: list[Server] = []
        waiting: list[Server] = []
        for server in selected:
            if not server.is_local():
                health = server.health()
                if not health.healthy:
                    msg = (
                        f"{server.name} at {server.address} is not reachable ({health.detail}) and is not "
                        "a local server `twin infra` can start; check the TWIN_ settings"
                    )
                    raise InfraError(msg)
                self._emit(server.name, f"external server at {server.address} is healthy")
                continue
            record = self.record(server)
            if record is not None and record.alive():
                # Ours and running: healthy already, or still starting (then wait for it).
                if server.health(timeout=2.0).healthy:
                    self._emit(server.name, f"already healthy at {server.address} (pid {record.pid})")
                else:
                    waiting.append(server)
                continue
            health = server.health(timeout=2.0)
            if health.healthy:
                self._emit(server.name, f"already healthy at {server.address} (not started by twin infra)")
                continue
            to_start.append(server)

        # Preflight everything before starting anything: a clear error beats a half-started stack.
        javas = {s.name: self.java_for(s) for s in to_start}
        for server in to_start:
            self._check_ports(server)
        for server in to_start:
            if not server.is_fetched():
                self._fetch_one(server, javas[server.name])

        started: list[str] = []
        for server in to_start:
            self._start(server, javas[server.name])
            started.append(server.name)
            waiting.append(server)
        self._wait_healthy(waiting, timeout, started)
        return started

    def _check_ports(self, server: Server) -> None:
        for purpose, port in server.ports.items():
            if port_open("127.0.0.1", port, timeout=0.3):
                owner = port_owner(port) or "another process"
                hint = _PORT_SETTING.get((server.name, purpose))
                move = f" or set {hint} to another port" if hint else ""
                msg = (
                    f"port {port} needed by {server.name} ({purpose}) is already in use by {owner}; "
                    f"stop it{move}"
                )
                raise PortInUseError(msg)

    def _start(self, server: Server, java: Java) -> None:
        self._emit(server.name, f"starting {server.name} {server.version} (Java {java.major})")
        server.prepare(java)
        launch = server.launch(java)
        server.console_log.parent.mkdir(parents=True, exist_ok=True)
        with server.console_log.open("ab") as console:
            console.write(f"\n=== twin infra: starting {server.name} at {time.ctime()} ===\n".encode())
            console.flush()
            kwargs: dict[str, Any] = {}
            if launch.user is not None and os.geteuid() == 0:
                kwargs.update(user=launch.user, group=launch.user, extra_groups=[])
            if launch.preexec is not None:
                kwargs["preexec_fn"] = launch.preexec
            proc = subprocess.Popen(  # argv built from our own settings
                launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: outlives the CLI, stopped as a group
                **kwargs,
            )
        import psutil

        record = ProcessRecord(
            name=server.name,
            pid=proc.pid,
            create_time=psutil.Process(proc.pid).create_time(),
            started_at=time.time(),
            version=server.version,
            address=server.address,
            argv=launch.argv,
            log=str(server.main_log),
        )
        record.save(server.record_path)
        self._children[server.name] = proc
        self._emit(server.name, f"pid {proc.pid}, log {server.main_log}")

    def _wait_healthy(self, servers: Sequence[Server], timeout: float, started: list[str]) -> None:
        begin = time.monotonic()
        pending = list(servers)
        failures: list[InfraError] = []
        while pending:
            for server in list(pending):
                record = self.record(server)
                if record is None or not record.alive():
                    pending.remove(server)
                    failures.append(self._crash_error(server, record))
                    self._emit(server.name, "exited during start")
                    continue
                health = server.health(timeout=2.0)
                if health.healthy:
                    pending.remove(server)
                    elapsed = time.monotonic() - begin
                    verb = "healthy" if server.name in started else "healthy (was starting)"
                    self._emit(server.name, f"{verb} after {elapsed:.1f}s at {server.address}")
            if pending and time.monotonic() - begin > timeout:
                for server in pending:
                    lines = tail(server.main_log, 5)
                    shown = "\n".join(f"    {line}" for line in lines)
                    failures.append(
                        HealthTimeoutError(
                            f"{server.name} did not become healthy within {timeout:g}s "
                            f"(process still running; `twin infra logs {server.name}`)"
                            + (f"; last log lines:\n{shown}" if shown else "")
                        )
                    )
                break
            if pending:
                time.sleep(0.5)
        if failures:
            for extra in failures[1:]:
                self._emit("infra", f"also: {str(extra).splitlines()[0]}")
            raise failures[0]

    def _crash_error(self, server: Server, record: ProcessRecord | None) -> ServerCrashedError:
        lines = _last_meaningful(server, 12)
        shown = "\n".join(f"    {line}" for line in lines) or "    (no output)"
        child = self._children.pop(server.name, None)
        code = f" with code {child.wait(timeout=10)}" if child is not None else ""
        msg = f"{server.name} exited while starting{code}; last log lines ({server.main_log}):\n{shown}"
        return ServerCrashedError(msg)

    # -- down ----------------------------------------------------------------------------------
    def down(self, only: Iterable[str] | None = None) -> dict[str, str]:
        """Stop the servers ``up`` started (by pid file); others are never touched."""
        selected = self.select(only)
        results: dict[str, str] = {}

        def stop(server: Server) -> tuple[str, str]:
            record = self.record(server)
            if record is None:
                return server.name, "not started by twin infra"
            outcome = stop_group(record, self.settings.infra.stop_timeout_s)
            child = self._children.pop(server.name, None)
            if child is not None:
                try:
                    child.wait(timeout=10)  # reap it
                except subprocess.TimeoutExpired:
                    # Seen once in CI: the group looked gone to stop_group while the JVM we launched
                    # had not exited yet. It is ours and being stopped anyway: kill it and reap it.
                    child.kill()
                    child.wait(timeout=60)
            server.record_path.unlink(missing_ok=True)
            return server.name, outcome

        with ThreadPoolExecutor(max_workers=len(selected) or 1) as pool:
            for name, outcome in pool.map(stop, selected):
                results[name] = outcome
                self._emit(name, outcome)
        return results

    # -- status --------------------------------------------------------------------------------
    def status(self, only: Iterable[str] | None = None) -> list[ServerStatus]:
        selected = self.select(only)
        with ThreadPoolExecutor(max_workers=len(selected) or 1) as pool:
            return list(pool.map(self._status_one, selected))

    def _status_one(self, server: Server) -> ServerStatus:
        record = self.record(server) if server.is_local() else None
        alive = record is not None and record.alive()
        health = server.health(timeout=3.0)
        pid = record.pid if alive and record else None
        uptime = time.time() - record.started_at if alive and record else None
        rss = record.rss_bytes() if alive and record else None
        version = health.version or (record.version if record else None)
        if not server.is_local():
            state = "external" if health.healthy else "unreachable"
        elif alive:
            state = "healthy" if health.healthy else "starting"
        elif record is not None:
            state = "healthy" if health.healthy else "down"
        else:
            state = "healthy" if health.healthy else "stopped"
        last = _last_meaningful(server, 8) if state == "down" else []
        return ServerStatus(
            name=server.name,
            state=state,
            healthy=health.healthy,
            version=version,
            address=server.address,
            pid=pid,
            uptime_s=uptime,
            rss_bytes=rss,
            managed=alive,
            detail=health.detail,
            last_lines=last,
        )

    def logs(self, name: str, lines: int = 50) -> tuple[Path, list[str]]:
        server = self.select([name])[0]
        return server.main_log, tail(server.main_log, lines)


def _last_meaningful(server: Server, n: int) -> list[str]:
    """What explains a dead server: its console output from the last start if it printed any
    (JVM option errors, stack traces before logging is set up), else the tail of its main log."""
    console = tail(server.console_log, 400)
    for idx in range(len(console) - 1, -1, -1):
        if console[idx].startswith("=== twin infra: starting"):
            console = console[idx + 1 :]
            break
    console = [ln for ln in console if ln.strip()]
    if console and server.main_log != server.console_log:
        return console[-n:]
    return tail(server.main_log, n) or console[-n:]


_MVN_ERROR = re.compile(r"^\[ERROR\]\s*(.+)$")


def _maven_reason(log: Path) -> str:
    for line in tail(log, 200):
        match = _MVN_ERROR.match(line.strip())
        if match and match.group(1).strip() and not match.group(1).startswith("->"):
            return match.group(1).strip()[:300]
    lines = [ln for ln in tail(log, 5) if ln.strip()]
    return lines[-1][:300] if lines else "no output"
