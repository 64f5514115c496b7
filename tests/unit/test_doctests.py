"""Every ``>>>`` example in the project's modules runs and shows what it says (the docs are tested)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from tests.unit.test_architecture import PACKAGES, ROOT


def modules_with_examples() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>>" in path.read_text():
                parts = path.relative_to(ROOT).with_suffix("").parts
                found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


MODULES = modules_with_examples()


def test_examples_are_found() -> None:
    assert "twin.errors" in MODULES and "processors.base" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    ran = 0
    for test in finder.find(module, name):
        runner.run(test)
        ran += sum(1 for ex in test.examples if not ex.options.get(doctest.SKIP))
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} example(s) of {name} failed (output above)"
    if ran == 0:
        pytest.skip(f"{name}: every example is marked +SKIP (needs servers)")


def test_a_wrong_example_fails(tmp_path: Path) -> None:
    """The runner reports a failing example (the check is not vacuous)."""
    test = doctest.DocTestParser().get_doctest(">>> 1 + 1\n3\n", {}, "bad", "bad.py", 0)
    runner = doctest.DocTestRunner()
    runner.run(test, out=lambda _text: None)
    assert runner.summarize(verbose=False).failed == 1
