"""What the browser tests share: Debian's chromium (never a downloaded build) and how a missing
prerequisite is reported (a skip locally, a failure under CI=true)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("TWIN_CHROMIUM", "/usr/bin/chromium"))


def need(ok: bool, why: str) -> None:
    """Skip with ``why`` unless ``ok``; under CI=true a missing prerequisite fails instead."""
    if ok:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why} (CI=true, so this fails)", pytrace=False)
    pytest.skip(why)
