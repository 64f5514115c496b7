"""The four local servers, in start order."""

from __future__ import annotations

from twin.infra.server import Server
from twin.infra.servers.cassandra import Cassandra
from twin.infra.servers.kafka import Kafka

SERVER_TYPES: dict[str, type[Server]] = {"kafka": Kafka, "cassandra": Cassandra}

__all__ = ["SERVER_TYPES", "Cassandra", "Kafka"]
