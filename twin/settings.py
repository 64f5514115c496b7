"""One settings object for every component.

Values come from (highest first) explicit arguments, ``TWIN_*`` environment variables, a ``.env``
file, then the defaults below. Nested fields use ``__``: ``TWIN_KAFKA__BOOTSTRAP_SERVERS``.

The defaults describe the local stack that ``twin infra up`` runs; point the connection settings at
real clusters (with SASL/TLS and auth) and ``twin infra`` is not needed.

>>> s = Settings(kafka={"bootstrap_servers": "k1:9093,k2:9093", "security_protocol": "SASL_SSL"})
>>> s.kafka.client_config()["security.protocol"]
'SASL_SSL'
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class KafkaSettings(BaseModel):
    """How to reach Kafka. Defaults to the local broker of ``twin infra``."""

    bootstrap_servers: str = ""
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-256, ...")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    client_id: str = "factory-twin"

    def client_config(self) -> dict[str, Any]:
        """librdkafka (confluent-kafka) properties for any client: producer, consumer or admin."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol.value,
            "client.id": self.client_id,
        }
        optional: dict[str, Any] = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": _reveal(self.sasl_password),
            "ssl.ca.location": _path(self.ssl_ca_location),
            "ssl.certificate.location": _path(self.ssl_certificate_location),
            "ssl.key.location": _path(self.ssl_key_location),
            "ssl.key.password": _reveal(self.ssl_key_password),
        }
        conf.update({k: v for k, v in optional.items() if v is not None})
        return conf


class RegistrySettings(BaseModel):
    """A Confluent-compatible schema registry (Confluent, Apicurio ccompat, Karapace, ...)."""

    url: str = ""
    username: str | None = None
    password: SecretStr | None = None
    ssl_ca_location: Path | None = None

    def client_config(self) -> dict[str, Any]:
        """Configuration for ``confluent_kafka.schema_registry.SchemaRegistryClient``."""
        conf: dict[str, Any] = {"url": self.url}
        if self.username is not None:
            conf["basic.auth.user.info"] = f"{self.username}:{_reveal(self.password) or ''}"
        if self.ssl_ca_location is not None:
            conf["ssl.ca.location"] = str(self.ssl_ca_location)
        return conf


class CassandraSettings(BaseModel):
    contact_points: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    port: int = 0
    local_dc: str = "datacenter1"
    username: str | None = None
    password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    keyspace: str = "factory_twin"
    replication_factor: int = 1
    connect_timeout_s: float = 5.0
    request_timeout_s: float = Field(default=10.0, gt=0, description="per-request timeout of the sink")
    max_in_flight: int = Field(default=128, gt=0, description="concurrent writes per sink process")
    ttl_s: dict[str, int] = Field(
        default_factory=lambda: {"telemetry": 30 * 86400},
        description="per-table TTL in seconds (table name -> seconds); 0 or absent: keep forever",
    )


class ElasticsearchSettings(BaseModel):
    url: str = ""
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    ca_certs: Path | None = None
    verify_certs: bool = True
    index_prefix: str = "twin"
    retention_days: int = Field(default=30, ge=1, description="daily indices older than this are deleted")
    request_timeout_s: float = Field(default=30.0, gt=0)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``elasticsearch.Elasticsearch``."""
        kwargs: dict[str, Any] = {"hosts": [self.url]}
        if self.username is not None:
            kwargs["basic_auth"] = (self.username, _reveal(self.password) or "")
        if self.api_key is not None:
            kwargs["api_key"] = _reveal(self.api_key)
        if self.ca_certs is not None:
            kwargs["ca_certs"] = str(self.ca_certs)
        if self.url.startswith("https"):
            kwargs["verify_certs"] = self.verify_certs
        return kwargs


class InfraSettings(BaseModel):
    """The local servers ``twin infra`` runs. Ignored when the connection settings point elsewhere."""

    state_dir: Path = Path(".twin")
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    cassandra_port: int = 9042
    cassandra_storage_port: int = 7000
    cassandra_jmx_port: int = 7199
    elasticsearch_port: int = 9200
    elasticsearch_transport_port: int = 9300
    registry_port: int = 8081
    registry_management_port: int = 9000
    kafka_heap: str = "768m"
    cassandra_heap: str = "1G"
    elasticsearch_heap: str = "1g"
    registry_heap: str = "384m"
    maven: str = "mvn"
    run_as_user: str = Field(
        default="twin", description="unprivileged user for servers that refuse root (Elasticsearch)"
    )
    start_timeout_s: float = 240.0
    stop_timeout_s: float = 60.0
    fetch_timeout_s: float = 1800.0

    @property
    def root(self) -> Path:
        return self.state_dir.expanduser().resolve()


class MetricsSettings(BaseModel):
    """Prometheus ``/metrics`` of the long-running commands.

    Each command has a port of its own, so a worker and the sinks run side by side on one machine
    (as Prometheus exporters each have an allocated port); ``--metrics-port`` wins over both. The
    gateway serves ``/metrics`` on its own HTTP port.

    >>> MetricsSettings().port_for("sink-cassandra")
    9465
    """

    enabled: bool = True
    port: int | None = Field(
        default=None, ge=0, le=65535, description="one port for every command (overrides the ones below)"
    )
    process_port: int = Field(default=9464, ge=0, le=65535, description="`twin process`")
    sink_cassandra_port: int = Field(default=9465, ge=0, le=65535, description="`twin sink cassandra`")
    sink_elasticsearch_port: int = Field(
        default=9466, ge=0, le=65535, description="`twin sink elasticsearch`"
    )
    produce_port: int = Field(default=9467, ge=0, le=65535, description="`twin produce`")
    schedule_port: int = Field(default=9468, ge=0, le=65535, description="`twin schedule serve`")

    def port_for(self, component: str) -> int:
        """The port ``component`` (process, sink-cassandra, sink-elasticsearch, produce, schedule)
        serves on."""
        ports = {
            "process": self.process_port,
            "sink-cassandra": self.sink_cassandra_port,
            "sink-elasticsearch": self.sink_elasticsearch_port,
            "produce": self.produce_port,
            "schedule": self.schedule_port,
        }
        if component not in ports:
            from twin.errors import ConfigError

            msg = f"no metrics port for {component!r}; known: {', '.join(ports)}"
            raise ConfigError(msg)
        return ports[component] if self.port is None else self.port


class ProcessorSettings(BaseModel):
    """The stream-processing workers (``twin process``)."""

    app_id: str = Field(default="factory-twin-processors", description="Faust app id = consumer group")
    topic_prefix: str = Field(default="", description="namespace prepended to every catalog topic")
    rules_file: Path | None = Field(default=None, description="alarm rules YAML; default: built-in rules")
    factory_file: Path | None = Field(default=None, description="plant file or simulator layout")
    rul_models: Path | None = Field(
        default=None,
        description="folder of remaining-useful-life models, <machine_type>.json each; default: the "
        "models shipped for the simulator's line; 'none' turns estimates off",
    )
    maintenance_horizon_s: float = Field(
        default=3600.0,
        gt=0,
        description="ask for a maintenance window when the RUL band's low end is below this",
    )
    checkpoint_interval_s: float = Field(default=1.0, gt=0, description="state snapshot + commit period")
    checkpoint_events: int = Field(default=5000, gt=0, description="checkpoint after this many inputs")
    kpi_windows_s: tuple[int, ...] = (60, 3600)
    kpi_lateness_s: float = Field(default=120.0, ge=0)
    max_clock_skew_s: float = Field(
        default=60.0,
        ge=0,
        description="inputs stamped further ahead of the wall clock go to the DLQ (reason clock-skew)",
    )
    session_timeout_s: float = Field(default=10.0, gt=0, description="dead worker detected after")
    # Faust's defaults (1 MiB per partition fetch, 4096-event stream buffer, unbounded poll) keep
    # its consumer thread and the event loop trading small batches; larger ones let a backlog (a
    # restart, a rebalance, a burst) drain ~2.5x faster per CPU-second (docs/benchmarks.md).
    fetch_max_bytes: int = Field(default=8 * 1024 * 1024, gt=0, description="bytes per partition fetch")
    max_poll_records: int = Field(default=10_000, gt=0, description="records per consumer poll")
    stream_buffer: int = Field(default=20_000, gt=0, description="events buffered per stream")


class SinkSettings(BaseModel):
    """The history sinks (``twin sink cassandra|elasticsearch``)."""

    group_prefix: str = Field(default="twin-sink", description="consumer group = <prefix>-<sink>")
    topic_prefix: str = Field(default="", description="namespace prepended to every catalog topic")
    batch_max: int = Field(default=2000, gt=0, description="records per write batch")
    batch_wait_s: float = Field(default=0.25, gt=0, description="longest wait to fill a batch")
    retry_initial_s: float = Field(default=0.5, gt=0, description="first back-off after a failed write")
    retry_max_s: float = Field(default=15.0, gt=0, description="longest back-off while a store is down")


class SchedulerSettings(BaseModel):
    """The re-planning service (``twin schedule serve``) and ``twin schedule solve``."""

    group_id: str = Field(default="twin-scheduler", description="consumer group of schedule.requests")
    topic_prefix: str = Field(default="", description="namespace prepended to every catalog topic")
    solvers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("cpsat", "edd", "mwkr", "spt", "fifo", "sa", "qaoa"),
        description="solvers run on every request (comma-separated in the environment)",
    )
    deadline_s: float = Field(default=1.0, gt=0, description="wall time per request for all solvers")
    choose: str = Field(default="best-feasible", description="'best-feasible' or 'prefer:<solver>'")
    seed: int = Field(default=0, description="seed of every stochastic solver (replays give the same plan)")
    unknown_repair_s: float = Field(
        default=600.0, ge=0, description="a machine down with no expected repair time is planned back after"
    )
    qaoa_backend: str = Field(
        default="fast", description="fast | reference | aer | ibm | ibm-fake:<FakeBackend>"
    )
    qaoa_reps: int = Field(default=1, ge=1, le=10)
    qaoa_shots: int = Field(default=1024, gt=0)
    qaoa_max_qubits: int = Field(default=16, gt=0, le=30, description="larger instances skip QAOA")
    evaluations: int | None = Field(
        default=None, gt=0, description="QAOA optimizer iterations and the annealer's matching budget"
    )
    ibm_token: SecretStr | None = Field(default=None, description="IBM Quantum API token (backend ibm)")
    ibm_instance: str | None = Field(
        default=None, description="IBM Quantum instance (CRN or hub/group/project)"
    )
    ibm_backend: str | None = Field(default=None, description="IBM device name; default: least busy")

    @field_validator("solvers", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        return tuple(x.strip() for x in v.split(",") if x.strip()) if isinstance(v, str) else v

    def qaoa_options(self) -> dict[str, object]:
        """Keyword options of the ``qaoa`` solver."""
        return {
            "backend": self.qaoa_backend,
            "reps": self.qaoa_reps,
            "shots": self.qaoa_shots,
            "max_qubits": self.qaoa_max_qubits,
            "ibm_token": self.ibm_token.get_secret_value() if self.ibm_token else None,
            "ibm_instance": self.ibm_instance,
            "ibm_backend": self.ibm_backend,
        }


class SparkSettings(BaseModel):
    """The Spark analytics jobs (``twin spark report``, ``jobs/spark``; docs/analytics.md)."""

    master: str = Field(default="local[*]", description="local[*], spark://host:7077, k8s://https://...")
    app_name: str = "factory-twin-analytics"
    repository: str = Field(
        default="https://repo1.maven.org/maven2/",
        description="Maven repository the connector packages resolve from (a mirror in a closed plant)",
    )
    ivy_dir: Path | None = Field(default=None, description="Ivy cache of resolved packages; default ~/.ivy2")
    driver_memory: str = "2g"
    shuffle_partitions: int = Field(default=8, gt=0, description="spark.sql.shuffle.partitions")
    conf: dict[str, str] = Field(
        default_factory=dict, description="extra Spark settings (JSON in the environment)"
    )


# Asymmetric algorithms need a public key file; HMAC ones a shared secret. "none" is never allowed.
JwtAlgorithm = Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"]


class GatewaySettings(BaseModel):
    """The websocket/REST gateway that streams the live twin to WebXR clients."""

    host: str = Field(default="127.0.0.1", description="interface to bind (0.0.0.0: all)")
    port: int = Field(default=8765, ge=0, le=65535, description="HTTP + websocket port")
    topic_prefix: str = Field(default="", description="namespace prepended to every catalog topic")
    dev_mode: bool = Field(
        default=False, description="random secret, printed tokens, /api/dev/token; never in production"
    )
    jwt_secret: SecretStr | None = Field(default=None, description="HMAC key for HS* tokens")
    jwt_public_key_file: Path | None = Field(default=None, description="PEM public key for RS*/ES*/EdDSA")
    jwt_algorithm: JwtAlgorithm = Field(default="HS256", description="the one algorithm tokens may use")
    jwt_audience: str = Field(default="factory-twin-gateway", description="required `aud` claim")
    jwt_issuer: str = Field(default="factory-twin", description="required `iss` claim")
    jwt_leeway_s: float = Field(default=30.0, ge=0, description="clock skew allowed on exp/nbf/iat")
    dev_token_ttl_s: int = Field(default=12 * 3600, gt=0, description="lifetime of dev-mode tokens")
    allowed_origins: list[str] = Field(
        default_factory=list, description="browser Origins allowed to connect; empty: no browser"
    )
    max_frame_bytes: int = Field(default=64 * 1024, gt=0, description="largest client message accepted")
    ping_interval_s: float = Field(default=20.0, gt=0, description="websocket ping period")
    ping_timeout_s: float = Field(default=20.0, gt=0, description="close a client whose pong is this late")
    queue_max_frames: int = Field(default=1000, gt=0, description="frames pending per client before 4008")
    slow_client_timeout_s: float = Field(
        default=5.0, gt=0, description="close a client whose oldest pending frame waits longer (4008)"
    )
    resume_buffer_frames: int = Field(default=10_000, gt=0, description="recent frames kept for resume")
    client_msg_rate: float = Field(default=5.0, gt=0, description="client messages per second allowed")
    client_msg_burst: int = Field(default=20, gt=0, description="client message burst allowed")
    max_clients: int = Field(default=5000, gt=0, description="websocket connections per process")
    history_max: int = Field(default=1000, gt=0, description="recent alarms / KPIs kept for REST")
    history: Literal["memory", "cassandra"] = Field(
        default="memory", description="where REST reads alarms/KPIs: this process or the sinks' tables"
    )
    factory_file: Path | None = Field(
        default=None, description="plant file or simulator layout the WebXR floor is drawn from"
    )
    web_dir: Path | None = Field(
        default=None, description="the built WebXR client served at /; default: xr_gateway/web/dist"
    )


class Settings(BaseSettings):
    """Everything configurable in Factory Twin."""

    model_config = SettingsConfigDict(
        env_prefix="TWIN_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    ci: bool = Field(default=False, validation_alias="CI", description="set by CI systems")
    java_home: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("TWIN_JAVA_HOME", "JAVA_HOME"),
        description="JDK for the local servers; default: `java` on PATH, then /usr/lib/jvm/*",
    )
    log_level: str = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    cassandra: CassandraSettings = Field(default_factory=CassandraSettings)
    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    infra: InfraSettings = Field(default_factory=InfraSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    processors: ProcessorSettings = Field(default_factory=ProcessorSettings)
    sinks: SinkSettings = Field(default_factory=SinkSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)

    @model_validator(mode="after")
    def _default_to_local_stack(self) -> Settings:
        # Empty connection settings mean "the local stack", so changing an infra port moves both.
        if not self.kafka.bootstrap_servers:
            self.kafka.bootstrap_servers = f"127.0.0.1:{self.infra.kafka_port}"
        if not self.registry.url:
            self.registry.url = f"http://127.0.0.1:{self.infra.registry_port}/apis/ccompat/v7"
        if not self.cassandra.port:
            self.cassandra.port = self.infra.cassandra_port
        if not self.elasticsearch.url:
            self.elasticsearch.url = f"http://127.0.0.1:{self.infra.elasticsearch_port}"
        return self

    def is_local(self, server: str) -> bool:
        """Whether ``server`` (kafka, cassandra, elasticsearch, registry) is the one ``twin infra`` runs."""
        infra = self.infra
        if server == "kafka":
            hosts = [_host_port(h) for h in self.kafka.bootstrap_servers.split(",") if h.strip()]
            return bool(hosts) and all(h in LOCAL_HOSTS and p == infra.kafka_port for h, p in hosts)
        if server == "cassandra":
            return self.cassandra.port == infra.cassandra_port and all(
                h in LOCAL_HOSTS for h in self.cassandra.contact_points
            )
        if server == "elasticsearch":
            return _url_is_local(self.elasticsearch.url, infra.elasticsearch_port)
        if server == "registry":
            return _url_is_local(self.registry.url, infra.registry_port)
        msg = f"unknown server {server!r}"
        raise ValueError(msg)


def _host_port(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.strip().rpartition(":")
    return host, int(port) if port.isdigit() else -1


def _url_is_local(url: str, port: int) -> bool:
    parts = urlsplit(url)
    return (parts.hostname or "") in LOCAL_HOSTS and parts.port == port


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _path(value: Path | None) -> str | None:
    return str(value) if value is not None else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Entry points may build their own ``Settings`` instead."""
    return Settings()
