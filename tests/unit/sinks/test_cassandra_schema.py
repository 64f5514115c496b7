"""Migration files, their order and checksums, TTL and replication settings: no server needed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sinks.cassandra.schema import (
    TABLES,
    AppliedMigration,
    Migration,
    check_keyspace_name,
    check_ttls,
    load_migrations,
    plan,
    replication,
)
from twin.errors import ConfigError, MigrationError

ONE = Migration(1, "first", "CREATE TABLE IF NOT EXISTS a (k int PRIMARY KEY);\n")
TWO = Migration(
    2, "second", "-- a comment; with a semicolon\nCREATE TABLE IF NOT EXISTS b (k int PRIMARY KEY);\n"
)


def done(m: Migration, checksum: str | None = None) -> AppliedMigration:
    return AppliedMigration(m.version, m.name, checksum or m.checksum, datetime.now(UTC))


def test_shipped_migrations_load_in_order_and_create_every_table_the_sink_writes() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert migrations[0].label == "0001_history"
    text = "\n".join(s for m in migrations for s in m.statements())
    for table in TABLES:
        assert f"CREATE TABLE IF NOT EXISTS {table} (" in text
    # Re-running a half-applied migration must be safe.
    assert all("IF NOT EXISTS" in s for m in migrations for s in m.statements())


def test_files_are_applied_by_version_number(tmp_path: Path) -> None:
    (tmp_path / "0010_later.cql").write_text("SELECT 1;")
    (tmp_path / "0002_early.cql").write_text("SELECT 2;")
    assert [m.label for m in load_migrations(tmp_path)] == ["0002_early", "0010_later"]


@pytest.mark.parametrize("names", [["1_x.cql"], ["0001_a.cql", "0001_b.cql"], ["0001_Bad-Name.cql"]])
def test_badly_named_or_duplicate_files_are_errors(tmp_path: Path, names: list[str]) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError):
        load_migrations(tmp_path)


def test_statements_drop_comments_and_split_on_semicolons() -> None:
    assert TWO.statements() == ["CREATE TABLE IF NOT EXISTS b (k int PRIMARY KEY)"]


def test_plan_returns_what_is_pending_in_order() -> None:
    assert plan([ONE, TWO], {}) == [ONE, TWO]
    assert plan([ONE, TWO], {1: done(ONE)}) == [TWO]
    assert plan([ONE, TWO], {1: done(ONE), 2: done(TWO)}) == []


def test_an_edited_applied_migration_is_a_clear_error() -> None:
    with pytest.raises(MigrationError, match="0001_first changed after it was applied"):
        plan([ONE, TWO], {1: done(ONE, checksum="0" * 64)})


def test_a_keyspace_newer_than_the_code_is_a_clear_error() -> None:
    with pytest.raises(MigrationError, match=r"0002_second.*does not ship"):
        plan([ONE], {1: done(ONE), 2: done(TWO)})


def test_line_endings_do_not_change_the_checksum() -> None:
    assert Migration(1, "a", "X;\r\nY;\r\n").checksum == Migration(1, "a", "X;\nY;\n").checksum


def test_ttls_cover_every_table_and_reject_typos() -> None:
    ttls = check_ttls({"telemetry": 86400})
    assert ttls["telemetry"] == 86400 and ttls["alarms_by_machine"] == 0 and set(ttls) == set(TABLES)
    with pytest.raises(ConfigError, match="telemetri"):
        check_ttls({"telemetri": 5})
    with pytest.raises(ConfigError):
        check_ttls({"telemetry": -1})


def test_replication_options() -> None:
    assert replication(3) == {"class": "SimpleStrategy", "replication_factor": 3}
    assert replication(1, {"dc1": 3, "dc2": 2}) == {"class": "NetworkTopologyStrategy", "dc1": 3, "dc2": 2}
    with pytest.raises(ConfigError):
        replication(0)
    with pytest.raises(ConfigError):
        replication(1, {"dc'1": 3})


@pytest.mark.parametrize("name", ["factory twin", "x;DROP", "1abc", ""])
def test_keyspace_names_that_are_not_identifiers_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        check_keyspace_name(name)
