"""The four local servers, in start order."""

from __future__ import annotations

from twin.infra.server import Server
from twin.infra.servers.cassandra import Cassandra
from twin.infra.servers.elasticsearch import Elasticsearch
from twin.infra.servers.kafka import Kafka
from twin.infra.servers.registry import Registry

SERVER_TYPES: dict[str, type[Server]] = {
    "kafka": Kafka,
    "registry": Registry,
    "cassandra": Cassandra,
    "elasticsearch": Elasticsearch,
}

__all__ = ["SERVER_TYPES", "Cassandra", "Elasticsearch", "Kafka", "Registry"]
