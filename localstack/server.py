"""What every local server shares: paths, artifacts, launch, health."""

from __future__ import annotations

import os
import socket
import string
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from localstack.java import Java
from twin.errors import InfraError, one_line
from twin.settings import Settings


@dataclass(frozen=True)
class Health:
    healthy: bool
    version: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Launch:
    """How to start a server: argv, environment additions, working dir, and optional user."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    user: str | None = None
    # Runs in the child between fork and exec (after the new session is created).
    preexec: Callable[[], None] | None = None


def infra_dir() -> Path:
    """The repository's ``infra/`` folder (poms and config templates), next to this package."""
    path = Path(__file__).resolve().parents[1] / "infra"
    if not (path / "kafka" / "pom.xml").is_file():
        msg = f"infra/ poms not found next to the localstack package ({path}); run from a source checkout"
        raise InfraError(msg)
    return path


def render(template: Path, target: Path, **values: object) -> None:
    """Render a ``string.Template`` file (``${name}`` placeholders); unknown names are an error."""
    text = string.Template(template.read_text()).substitute({k: str(v) for k, v in values.items()})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Server(ABC):
    """One local server managed by ``twin infra``."""

    name: ClassVar[str]
    version: ClassVar[str]
    java_min: ClassVar[int] = 17
    java_max: ClassVar[int | None] = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.infra.root

    # -- paths ---------------------------------------------------------------------------------
    @property
    def dist_dir(self) -> Path:
        return self.root / "dist" / self.name

    @property
    def data_dir(self) -> Path:
        return self.root / "data" / self.name

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf" / self.name

    @property
    def log_dir(self) -> Path:
        return self.root / "logs" / self.name

    @property
    def console_log(self) -> Path:
        """stdout/stderr of the process: where a crash at start shows up."""
        return self.log_dir / "console.log"

    @property
    def main_log(self) -> Path:
        """The log ``twin infra logs NAME`` shows."""
        return self.console_log

    @property
    def record_path(self) -> Path:
        return self.root / "run" / f"{self.name}.json"

    @property
    def pom(self) -> Path:
        return infra_dir() / self.name / "pom.xml"

    @property
    def templates(self) -> Path:
        return infra_dir() / self.name

    @property
    def fetched_marker(self) -> Path:
        return self.dist_dir / ".fetched"

    def is_fetched(self) -> bool:
        try:
            return self.fetched_marker.read_text().strip() == self.version
        except OSError:
            return False

    # -- what a subclass says ------------------------------------------------------------------
    @property
    @abstractmethod
    def ports(self) -> dict[str, int]:
        """Every port the server listens on, by purpose."""

    @property
    @abstractmethod
    def address(self) -> str:
        """Where clients connect (as the settings say)."""

    @abstractmethod
    def prepare(self, java: Java) -> None:
        """Render configuration and initialise storage; idempotent."""

    @abstractmethod
    def launch(self, java: Java) -> Launch:
        """The command that runs the server in the foreground."""

    @abstractmethod
    def check(self, timeout: float) -> Health:
        """Talk to the server with its real client/protocol; never raises."""

    # -- shared behaviour ----------------------------------------------------------------------
    def health(self, timeout: float = 3.0) -> Health:
        try:
            return self.check(timeout)
        except Exception as exc:  # a health check reports, it never raises
            return Health(False, detail=one_line(exc))

    def is_local(self) -> bool:
        return self.settings.is_local(self.name)

    def base_env(self, java: Java) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "TMPDIR")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env["JAVA_HOME"] = str(java.home)
        env["PATH"] = f"{java.home / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def jvm_common(self, heap: str) -> list[str]:
        return [
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=50",
            "-Djava.awt.headless=true",
            # A marker so a human (and `ps`) can tell which state dir a JVM belongs to.
            f"-Dtwin.server={self.name}",
            f"-Dtwin.state={self.root}",
        ]
