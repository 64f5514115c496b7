"""The layout's import rules (ARCHITECTURE.md): a processor never does I/O, the kernel imports nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "twin",
    "schemas",
    "sim",
    "producers",
    "processors",
    "pipelines",
    "sinks",
    "jobs",
    "rl",
    "xr_gateway",
]
ALLOWED: dict[str, set[str]] = {
    "twin": set(),
    "schemas": {"twin"},
    "sim": {"twin"},
    "producers": {"twin", "schemas", "sim"},
    "processors": {"twin", "schemas"},
    "pipelines": set(PACKAGES),
    "sinks": {"twin", "schemas"},
    "jobs": {"twin"},
    "rl": {"twin", "sim", "producers"},
    # Beyond ARCHITECTURE.md's twin + schemas: the 3D view is drawn from the simulator's own layout
    # file (sim's pure loader, one format, never a copy), and history is read through the sinks'
    # queries over the tables the sinks own (one place for the CQL, never a second schema).
    "xr_gateway": {"twin", "schemas", "sim", "sinks"},
}
# Libraries that do I/O: a processor must stay pure so it can be tested and replayed without servers.
IO_LIBRARIES = {
    "confluent_kafka",
    "aiokafka",
    "faust",
    "cassandra",
    "elasticsearch",
    "httpx",
    "requests",
    "socket",
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


# The `twin` CLI is the composition root: its command modules wire the other packages together
# (lazily, inside the commands), so the kernel itself stays free of them.
COMPOSITION_ROOTS = (ROOT / "twin" / "cli",)


@pytest.mark.parametrize("package", PACKAGES)
def test_import_direction(package: str) -> None:
    violations = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if any(path.is_relative_to(root) for root in COMPOSITION_ROOTS):
            continue
        for name in imports_of(path) & set(PACKAGES):
            if name != package and name not in ALLOWED[package]:
                violations.append(f"{path.relative_to(ROOT)} imports {name}")
    assert violations == []


def test_processors_do_no_io() -> None:
    bad = [
        f"{p.relative_to(ROOT)} imports {lib}"
        for p in sorted((ROOT / "processors").rglob("*.py"))
        for lib in imports_of(p) & IO_LIBRARIES
    ]
    assert bad == []


def test_no_environment_reads_outside_settings() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            if path.name != "settings.py" and (
                "os.environ[" in text or "os.getenv(" in text or "environ.get(" in text
            ):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
