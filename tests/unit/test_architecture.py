"""The layout's import rules: docs/architecture.md's may-import table, checked against every import."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TABLE_DOC = ROOT / "docs" / "architecture.md"
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


def may_import_table() -> dict[str, set[str] | None]:
    """``package -> allowed packages`` from the doc's table (None: anything, for ``*``)."""
    rows: dict[str, set[str] | None] = {}
    for line in TABLE_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"`\w+`", cells[0]):
            continue
        name, allowed = cells[0].strip("`"), cells[2]
        rows[name] = None if allowed == "*" else {a.strip() for a in allowed.split(",") if a.strip() != "—"}
    return rows


TABLE = may_import_table()
PACKAGES = sorted(TABLE)
RULED = [p for p in PACKAGES if TABLE[p] is not None]  # the composition root may import anything
DESIGN = ROOT.parent / "shared" / "ARCHITECTURE.md"  # the design card, beside a development checkout


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_table_covers_every_package() -> None:
    """Every top-level Python package of the repository has a row, and every row a package."""
    on_disk = {
        p.parent.name
        for p in ROOT.glob("*/__init__.py")
        if p.parent.name not in {"tests", "bench", "docs", "infra"}
    }
    assert set(PACKAGES) == on_disk
    assert all(allowed is None or allowed <= set(PACKAGES) for allowed in TABLE.values())


@pytest.mark.skipif(not DESIGN.is_file(), reason="the design card is not beside this checkout")
def test_table_equals_the_design() -> None:
    """Rows the design card spells as package lists are the same here; the gateway's row names
    the read models the card leaves to this table."""
    design: dict[str, set[str]] = {}
    for line in DESIGN.read_text().splitlines():
        match = re.fullmatch(r"\| `(\w+)(?:/\w+)*/` \|.*\| ([^|]+) \|", line.strip())
        if match is None:
            continue
        name, allowed = match[1], match[2].strip()
        if allowed == "nothing of the project":
            design[name] = set()
        elif name in TABLE and re.fullmatch(r"\w+(, \w+)*", allowed):  # a plain list of packages
            design[name] = set(allowed.split(", "))
    assert "twin" in design and "pipelines" in design
    assert {name: TABLE[name] for name in design} == design
    assert {"twin", "schemas"} <= (TABLE["xr_gateway"] or set())


@pytest.mark.parametrize("package", RULED)
def test_import_direction(package: str) -> None:
    allowed = TABLE[package] or set()
    violations = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(imports_of(path) & set(PACKAGES))
        if name != package and name not in allowed
    ]
    assert violations == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """A forbidden import is found (the check is not vacuous)."""
    module = tmp_path / "bad.py"
    module.write_text("from cli.app import app\nimport sinks.base\n")
    assert imports_of(module) == {"cli", "sinks"}
    assert "cli" not in (TABLE["twin"] or set())


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
