"""Cassandra history: versioned schema, the sink that writes it, and the queries that read it."""

from __future__ import annotations

from sinks.cassandra.schema import Migration, MigrationReport, Migrator, load_migrations
from sinks.cassandra.sink import CassandraSink

__all__ = [
    "CassandraSink",
    "Migration",
    "MigrationReport",
    "Migrator",
    "load_migrations",
]
