from __future__ import annotations

from pathlib import Path

import pytest

from localstack import java as java_mod
from twin.errors import PrerequisiteError


def fake_jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    exe = home / "bin" / "java"
    exe.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    exe.chmod(0o755)
    return home


@pytest.fixture
def jvm_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(java_mod, "_JVM_DIRS", (tmp_path,))
    monkeypatch.setenv("PATH", "/nonexistent")
    java_mod.probe.cache_clear()
    return tmp_path


def test_picks_a_jdk_within_range(jvm_dir: Path) -> None:
    fake_jdk(jvm_dir, "jdk-11", "11.0.2")
    fake_jdk(jvm_dir, "jdk-25", "25")
    j17 = fake_jdk(jvm_dir, "jdk-17", "17.0.15")
    found = java_mod.find_java("cassandra", 17, 17, None)
    assert found.home == j17 and found.major == 17


def test_preferred_home_wins(jvm_dir: Path) -> None:
    fake_jdk(jvm_dir, "jdk-17", "17.0.15")
    j21 = fake_jdk(jvm_dir / "other", "jdk-21", "21.0.1")
    assert java_mod.find_java("kafka", 11, None, j21).home == j21


def test_old_style_version_string(jvm_dir: Path) -> None:
    home = fake_jdk(jvm_dir, "jdk8", "1.8.0_392")
    probed = java_mod.probe(home)
    assert probed is not None and probed.major == 8


def test_too_old_names_what_was_found(jvm_dir: Path) -> None:
    fake_jdk(jvm_dir, "jdk-11", "11.0.2")
    with pytest.raises(PrerequisiteError, match=r"elasticsearch needs Java 17 or newer; found only Java 11"):
        java_mod.find_java("elasticsearch", 17, None, None)


def test_no_java_at_all(jvm_dir: Path) -> None:
    with pytest.raises(PrerequisiteError, match="no Java was found"):
        java_mod.find_java("kafka", 11, None, None)
