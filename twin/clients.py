"""Client factories: every connection to Kafka, the registry, Cassandra and Elasticsearch is built here
from the settings, so SASL/TLS/auth are configured in one place."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from twin.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Cluster
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from elasticsearch import Elasticsearch

_librdkafka_log = logging.getLogger("twin.kafka.librdkafka")


def kafka_admin(settings: Settings, **overrides: Any) -> AdminClient:
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {**settings.kafka.client_config(), "logger": _librdkafka_log, **overrides}
    return AdminClient(conf)


def kafka_producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent, ``acks=all`` producer: no duplicates or reordering on retry."""
    from confluent_kafka import Producer

    conf: dict[str, Any] = {
        **settings.kafka.client_config(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # Java clients, Kafka Streams and Faust (aiokafka) hash keys with murmur2; librdkafka's
        # default (CRC32) would put a machine's commands on another partition than its telemetry.
        "partitioner": "murmur2_random",
        "logger": _librdkafka_log,
    }
    conf.update(overrides)
    return Producer(conf)


def kafka_consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer that never auto-commits: callers commit after their effect is durable."""
    from confluent_kafka import Consumer

    conf: dict[str, Any] = {
        **settings.kafka.client_config(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "logger": _librdkafka_log,
    }
    conf.update(overrides)
    return Consumer(conf)


def schema_registry(settings: Settings) -> SchemaRegistryClient:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient(settings.registry.client_config())


def cassandra_cluster(settings: Settings, **overrides: Any) -> Cluster:
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy

    cfg = settings.cassandra
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cfg.local_dc)),
        request_timeout=overrides.pop("request_timeout", cfg.request_timeout_s),
    )
    kwargs: dict[str, Any] = {
        "contact_points": cfg.contact_points,
        "port": cfg.port,
        "connect_timeout": cfg.connect_timeout_s,
        "execution_profiles": {EXEC_PROFILE_DEFAULT: profile},
        "protocol_version": 5,
        # The driver's default waits grow to 10 minutes and give up after 64 attempts; a restarted
        # node should be back in use within seconds, however long the outage lasted.
        "reconnection_policy": ExponentialReconnectionPolicy(0.5, 5.0, max_attempts=None),
    }
    if cfg.username is not None:
        password = cfg.password.get_secret_value() if cfg.password else ""
        kwargs["auth_provider"] = PlainTextAuthProvider(cfg.username, password)
    if cfg.ssl_ca_location is not None:
        import ssl

        ctx = ssl.create_default_context(cafile=str(cfg.ssl_ca_location))
        kwargs["ssl_context"] = ctx
    kwargs.update(overrides)
    return Cluster(**kwargs)


def elasticsearch(settings: Settings, **overrides: Any) -> Elasticsearch:
    from elasticsearch import Elasticsearch

    return Elasticsearch(**{**settings.elasticsearch.client_kwargs(), **overrides})
