"""Local real servers (Kafka, Cassandra, Elasticsearch, schema registry) as child processes."""

from __future__ import annotations

from localstack.manager import Infra, ServerStatus
from localstack.server import Health, Server

__all__ = ["Health", "Infra", "Server", "ServerStatus"]
