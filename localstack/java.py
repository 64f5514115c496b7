"""Find a JDK whose major version suits a server."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from twin.errors import PrerequisiteError

_JVM_DIRS = (Path("/usr/lib/jvm"), Path("/opt/java"), Path("/usr/local/lib/jvm"))
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


@dataclass(frozen=True)
class Java:
    home: Path
    major: int

    @property
    def executable(self) -> Path:
        return self.home / "bin" / "java"


@lru_cache(maxsize=64)
def probe(home: Path) -> Java | None:
    """The JDK at ``home``, or None when there is no runnable ``bin/java`` there."""
    exe = home / "bin" / "java"
    if not exe.is_file():
        return None
    try:
        out = subprocess.run([str(exe), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(out.stderr + out.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    return Java(home=home, major=major)


def candidates(preferred: Path | None) -> list[Path]:
    """JDK homes to consider, most preferred first, without duplicates."""
    homes: list[Path] = []
    if preferred is not None:
        homes.append(preferred)
    on_path = shutil.which("java")
    if on_path:
        homes.append(Path(on_path).resolve().parent.parent)
    for root in _JVM_DIRS:
        if root.is_dir():
            homes.extend(sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()))
    seen: set[Path] = set()
    unique = []
    for home in homes:
        key = home.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(home)
    return unique


def find_java(server: str, minimum: int, maximum: int | None, preferred: Path | None) -> Java:
    """The first JDK in ``candidates`` with ``minimum <= major <= maximum``.

    Raises PrerequisiteError naming what was found when nothing fits.
    """
    found: list[Java] = []
    for home in candidates(preferred):
        java = probe(home)
        if java is None:
            continue
        if java.major >= minimum and (maximum is None or java.major <= maximum):
            return java
        found.append(java)
    wanted = f"Java {minimum}" + (f" to {maximum}" if maximum else " or newer")
    if not found:
        msg = (
            f"{server} needs {wanted} but no Java was found (looked at JAVA_HOME, PATH, "
            f"{', '.join(map(str, _JVM_DIRS))}); install OpenJDK 17, "
            "e.g. `apt-get install openjdk-17-jdk-headless`"
        )
    else:
        have = ", ".join(f"Java {j.major} at {j.home}" for j in found)
        msg = f"{server} needs {wanted}; found only {have}. Install OpenJDK 17 or set JAVA_HOME"
    raise PrerequisiteError(msg)
