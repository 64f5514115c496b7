"""Client factories: every connection to Kafka, the registry, Cassandra and Elasticsearch is built here
from the settings, so SASL/TLS/auth are configured in one place."""

from __future__ import annotations

import logging
import socket
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from twin.errors import ConfigError, ServerUnreachableError
from twin.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Cluster
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from elasticsearch import Elasticsearch

_librdkafka_log = logging.getLogger("twin.kafka.librdkafka")
_OR_INFRA_UP = " or run `twin infra up`"


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


def kafka_unreachable(settings: Settings) -> ServerUnreachableError:
    """The one line for a broker list nobody answers at: where we looked and what to change.

    >>> print(kafka_unreachable(Settings(kafka={"bootstrap_servers": "k1.plant:9093"})))
    cannot reach Kafka at k1.plant:9093 (set TWIN_KAFKA__BOOTSTRAP_SERVERS)
    """
    return ServerUnreachableError(
        f"cannot reach Kafka at {settings.kafka.bootstrap_servers} "
        f"(set TWIN_KAFKA__BOOTSTRAP_SERVERS{_OR_INFRA_UP if settings.is_local('kafka') else ''})"
    )


def registry_unreachable(settings: Settings) -> ServerUnreachableError:
    """The one line for a schema registry nobody answers at."""
    return ServerUnreachableError(
        f"cannot reach the schema registry at {settings.registry.url} "
        f"(set TWIN_REGISTRY__URL{_OR_INFRA_UP if settings.is_local('registry') else ''})"
    )


def check_kafka(settings: Settings, timeout_s: float = 10.0) -> None:
    """Raise the one-line :func:`kafka_unreachable` unless a broker answers a metadata request.

    Commands call this before their first Kafka client: librdkafka only logs a refused connection
    and retries, so the first error a caller sees would otherwise be a timeout deep in its work.
    """
    from confluent_kafka import KafkaError, KafkaException

    entries = [_address(a) for a in settings.kafka.bootstrap_servers.split(",") if a.strip()]
    addresses = [a for a in entries if a is not None]
    # No bootstrap address takes a TCP connection: say so now, not after the metadata timeout.
    if addresses and len(addresses) == len(entries) and not any(_accepts(h, p) for h, p in addresses):
        raise kafka_unreachable(settings)
    try:
        kafka_admin(settings).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        # The broker answered and refused us (credentials, TLS): that is not "unreachable".
        refused = (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._SSL)
        if error is not None and error.code() in refused:
            msg = (
                f"Kafka at {settings.kafka.bootstrap_servers} refused us: {error.str()} "
                "(check TWIN_KAFKA__SECURITY_PROTOCOL, TWIN_KAFKA__SASL_* and TWIN_KAFKA__SSL_*)"
            )
            raise ConfigError(msg) from exc
        raise kafka_unreachable(settings) from exc


def check_registry(settings: Settings, timeout_s: float = 10.0) -> None:
    """Raise the one-line :func:`registry_unreachable` unless the registry answers over HTTP."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    conf = {**settings.registry.client_config(), "timeout": timeout_s, "max.retries": 0}
    with SchemaRegistryClient(conf) as registry:
        try:
            registry.get_subjects()
        except SchemaRegistryError:
            return  # it answered; what it said is for the command that uses it to report
        except http_transport_errors() as exc:
            raise registry_unreachable(settings) from exc


def http_transport_errors() -> tuple[type[BaseException], ...]:
    """What the registry client raises when no HTTP answer came at all (refused, DNS, timeout, TLS).

    confluent-kafka uses httpx2 where it is installed, else httpx: both are looked for, among the
    modules already loaded (an error check must not import an HTTP stack).
    """
    found: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        module = sys.modules.get(name)
        if module is not None:
            found.append(module.TransportError)
    return tuple(found)


def unreachable(exc: BaseException, settings: Settings) -> ServerUnreachableError | None:
    """:func:`kafka_unreachable` or :func:`registry_unreachable` when ``exc``, or an exception under
    it, says that server could not be reached at all; None for anything else (a refusal, a bug)."""
    kafka = sys.modules.get("confluent_kafka")  # only libraries already loaded: nothing is imported
    lost = (
        (kafka.KafkaError._TRANSPORT, kafka.KafkaError._ALL_BROKERS_DOWN, kafka.KafkaError._RESOLVE)
        if kafka is not None
        else ()
    )
    http = tuple(e for e in http_transport_errors() if e is not OSError)
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if kafka is not None and isinstance(cause, kafka.KafkaException) and cause.args:
            error = cause.args[0]
            if isinstance(error, kafka.KafkaError) and error.code() in lost:
                return kafka_unreachable(settings)
        if http and isinstance(cause, http) and _same_server(_request_url(cause), settings.registry.url):
            return registry_unreachable(settings)
        cause = cause.__cause__ or cause.__context__
    return None


def _request_url(exc: BaseException) -> str:
    try:
        return str(exc.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is attached
        return ""


def _same_server(url: str, other: str) -> bool:
    a, b = urlsplit(url), urlsplit(other)
    return bool(a.hostname) and (a.hostname, a.port) == (b.hostname, b.port)


def _address(bootstrap: str) -> tuple[str, int] | None:
    """``host:port`` of one bootstrap entry (``[::1]:9092``, ``SASL_SSL://b1:9093``); None if unclear."""
    host, _, port = bootstrap.strip().rpartition("://")[2].rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None


def _accepts(host: str, port: int, timeout_s: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


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


def produce_blocking(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: str | bytes | None = None,
    *,
    headers: Any = None,
    partition: int = -1,
    on_delivery: Any = None,
    poll_s: float = 0.05,
) -> int:
    """Hand one message to ``producer``, waiting while its local queue is full; returns how many
    times it waited.

    A full queue is back-pressure, never a drop: the wait lets librdkafka send and serve delivery
    callbacks, then the produce is tried again.
    """
    waits = 0
    while True:
        try:
            producer.produce(topic, value, key, partition, on_delivery, headers=headers)
            return waits
        except BufferError:
            waits += 1
            producer.poll(poll_s)
