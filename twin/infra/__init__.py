"""Local real servers (Kafka, Cassandra, Elasticsearch, schema registry) as child processes."""

from __future__ import annotations

from twin.infra.manager import Infra, ServerStatus
from twin.infra.server import Health, Server

__all__ = ["Health", "Infra", "Server", "ServerStatus"]
