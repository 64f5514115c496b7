"""The four local servers, in start order."""

from __future__ import annotations

from localstack.server import Server
from localstack.servers.cassandra import Cassandra
from localstack.servers.elasticsearch import Elasticsearch
from localstack.servers.kafka import Kafka
from localstack.servers.registry import Registry

SERVER_TYPES: dict[str, type[Server]] = {
    "kafka": Kafka,
    "registry": Registry,
    "cassandra": Cassandra,
    "elasticsearch": Elasticsearch,
}

__all__ = ["SERVER_TYPES", "Cassandra", "Elasticsearch", "Kafka", "Registry"]
