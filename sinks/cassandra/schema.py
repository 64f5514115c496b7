"""Versioned CQL migrations: ``migrations/NNNN_name.cql``, applied in order, recorded with a checksum.

``twin db migrate`` creates the keyspace if needed, applies what is pending, records each migration
in ``<keyspace>.schema_migrations`` (version, name, sha256) and sets every table's default TTL from
``TWIN_CASSANDRA__TTL_S``. Running it again is a no-op. Editing a migration that was already applied
is an error: add a new file instead, so every keyspace runs the same history.

The planning logic is pure (:func:`plan`), so it is unit-tested without a server.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin.errors import ConfigError, MigrationError

if TYPE_CHECKING:
    from cassandra.cluster import Session

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.cql$")
_DATACENTER = re.compile(r"^[A-Za-z0-9_.-]+$")
_KEYSPACE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")

# Tables the sink writes; the keys TWIN_CASSANDRA__TTL_S may name.
TABLES = (
    "telemetry",
    "parts",
    "machine_states",
    "machines_by_line",
    "anomalies",
    "kpi_windows",
    "alarms_by_machine",
    "alarms_by_state",
    "alarm_events",
    "schedule_plans",
    "schedule_requests",
    "rul_estimates",
)

_LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version int PRIMARY KEY, name text, checksum text, applied_at timestamp)"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        # Line endings normalised: a checkout with CRLF is the same migration.
        return hashlib.sha256(self.text.replace("\r\n", "\n").encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    def statements(self) -> list[str]:
        """The CQL statements, comments removed. Statements end with ``;`` at the end of a line."""
        lines = [ln for ln in self.text.splitlines() if not ln.strip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime | None

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(slots=True)
class MigrationReport:
    """What ``migrate`` found and did."""

    keyspace: str
    keyspace_created: bool = False
    applied: list[Migration] = field(default_factory=list)
    already: list[AppliedMigration] = field(default_factory=list)
    ttl_changes: list[tuple[str, int, int]] = field(default_factory=list)  # table, old, new
    notes: list[str] = field(default_factory=list)


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations shipped in ``directory``, by version. Stray or duplicate files are errors."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.cql")):
        m = _FILE.match(path.name)
        if m is None:
            msg = f"migration file {path.name} is not named NNNN_name.cql"
            raise MigrationError(msg)
        version = int(m.group(1))
        if version in found:
            msg = f"two migrations have version {version:04d}: {found[version].label} and {path.stem}"
            raise MigrationError(msg)
        found[version] = Migration(version, m.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def plan(available: list[Migration], applied: dict[int, AppliedMigration]) -> list[Migration]:
    """The migrations still to apply, in order; an error if history and files disagree."""
    by_version = {m.version: m for m in available}
    for version, done in sorted(applied.items()):
        shipped = by_version.get(version)
        if shipped is None:
            msg = (
                f"the keyspace has migration {done.label}, which this version of factory-twin does not "
                "ship; upgrade factory-twin (or use another keyspace)"
            )
            raise MigrationError(msg)
        if shipped.checksum != done.checksum:
            msg = (
                f"migration {shipped.label} changed after it was applied (checksum {done.checksum[:12]} "
                f"in the keyspace, {shipped.checksum[:12]} now); never edit an applied migration, "
                "add a new one"
            )
            raise MigrationError(msg)
    return [m for m in available if m.version not in applied]


def check_keyspace_name(keyspace: str) -> str:
    """The keyspace goes into CQL text, so only plain identifiers are accepted."""
    if not _KEYSPACE.match(keyspace):
        msg = (
            f"invalid keyspace name {keyspace!r}: letters, digits and _ only, "
            "starting with a letter, at most 48"
        )
        raise ConfigError(msg)
    return keyspace


def replication(replication_factor: int, datacenters: dict[str, int] | None = None) -> dict[str, Any]:
    """``SimpleStrategy`` with ``replication_factor``, or ``NetworkTopologyStrategy`` per datacenter."""
    if datacenters:
        bad = [dc for dc in datacenters if not _DATACENTER.match(dc)]
        if bad:
            msg = f"invalid datacenter names {bad}: letters, digits, '_', '-' and '.' only"
            raise ConfigError(msg)
        if any(n < 1 for n in datacenters.values()):
            msg = "every datacenter needs a replication factor of at least 1"
            raise ConfigError(msg)
        return {"class": "NetworkTopologyStrategy", **datacenters}
    if replication_factor < 1:
        msg = f"replication factor must be at least 1, not {replication_factor}"
        raise ConfigError(msg)
    return {"class": "SimpleStrategy", "replication_factor": replication_factor}


def check_ttls(ttl_s: dict[str, int]) -> dict[str, int]:
    """Every table's default TTL (0: forever); a typo in a table name is an error, not ignored."""
    unknown = sorted(set(ttl_s) - set(TABLES))
    if unknown:
        msg = f"TWIN_CASSANDRA__TTL_S names unknown tables {unknown}; the tables are: {', '.join(TABLES)}"
        raise ConfigError(msg)
    bad = {t: s for t, s in ttl_s.items() if s < 0}
    if bad:
        msg = f"TTLs must be 0 (forever) or positive seconds: {bad}"
        raise ConfigError(msg)
    return {t: ttl_s.get(t, 0) for t in TABLES}


def _cql_map(options: dict[str, Any]) -> str:
    parts = [f"'{k}': {v}" if isinstance(v, int) else f"'{k}': '{v}'" for k, v in options.items()]
    return "{" + ", ".join(parts) + "}"


def _same_replication(current: dict[str, str], wanted: dict[str, Any]) -> bool:
    def norm(opts: dict[str, Any]) -> dict[str, str]:
        return {k: str(v).rsplit(".", 1)[-1] for k, v in opts.items()}

    return norm(current) == norm(wanted)


class Migrator:
    """Applies the shipped migrations to one keyspace through ``session`` (protocol v5: statements
    carry their keyspace, so the session's own keyspace is left alone)."""

    def __init__(self, session: Session, keyspace: str, migrations: list[Migration] | None = None) -> None:
        self.session = session
        self.keyspace = check_keyspace_name(keyspace)
        self.migrations = load_migrations() if migrations is None else migrations

    def _run(self, cql: str, params: tuple[Any, ...] | None = None) -> Any:
        from cassandra.query import SimpleStatement

        return self.session.execute(SimpleStatement(cql, keyspace=self.keyspace), params)

    def keyspace_exists(self) -> bool:
        rows = self.session.execute(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s", (self.keyspace,)
        )
        return rows.one() is not None

    def applied(self) -> dict[int, AppliedMigration]:
        """What the keyspace's ledger records; empty when there is no keyspace or ledger yet."""
        exists = self.session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
            (self.keyspace, "schema_migrations"),
        ).one()
        if exists is None:
            return {}
        rows = self._run("SELECT version, name, checksum, applied_at FROM schema_migrations")
        return {
            r.version: AppliedMigration(
                r.version, r.name, r.checksum, r.applied_at.replace(tzinfo=UTC) if r.applied_at else None
            )
            for r in rows
        }

    def pending(self) -> list[Migration]:
        return plan(self.migrations, self.applied())

    def migrate(
        self, *, replication_options: dict[str, Any], ttl_s: dict[str, int] | None = None
    ) -> MigrationReport:
        """Create the keyspace if missing, apply pending migrations, then reconcile table TTLs."""
        report = MigrationReport(self.keyspace)
        ttls = check_ttls(ttl_s or {})
        report.keyspace_created = self._ensure_keyspace(replication_options, report)
        self._run(_LEDGER)
        applied = self.applied()
        todo = plan(self.migrations, applied)
        report.already = [applied[v] for v in sorted(applied)]
        for migration in todo:
            for statement in migration.statements():
                self._run(statement)
            # Recorded only after every statement ran: an interrupted migration runs again (its
            # statements are IF NOT EXISTS), it is never half-recorded.
            self._run(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, migration.checksum, datetime.now(UTC)),
            )
            report.applied.append(migration)
        report.ttl_changes = self._reconcile_ttls(ttls)
        return report

    def _ensure_keyspace(self, wanted: dict[str, Any], report: MigrationReport) -> bool:
        row = self.session.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (self.keyspace,)
        ).one()
        if row is None:
            self.session.execute(
                f"CREATE KEYSPACE IF NOT EXISTS {self.keyspace} WITH replication = {_cql_map(wanted)}"
            )
            return True
        current = dict(row.replication)
        if not _same_replication(current, wanted):
            # Changing replication of live data needs a repair afterwards: an operator's decision.
            report.notes.append(
                f"keyspace {self.keyspace} keeps its replication {current}; the settings ask for {wanted}. "
                "To change it: ALTER KEYSPACE, then `nodetool repair -full` on every node"
            )
        return False

    def _reconcile_ttls(self, ttls: dict[str, int]) -> list[tuple[str, int, int]]:
        rows = self.session.execute(
            "SELECT table_name, default_time_to_live FROM system_schema.tables WHERE keyspace_name = %s",
            (self.keyspace,),
        )
        current = {r.table_name: r.default_time_to_live for r in rows}
        changes: list[tuple[str, int, int]] = []
        for table, ttl in ttls.items():
            old = current.get(table)
            if old is not None and old != ttl:
                self._run(f"ALTER TABLE {table} WITH default_time_to_live = {int(ttl)}")
                changes.append((table, old, ttl))
        return changes
