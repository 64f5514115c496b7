from __future__ import annotations

from pathlib import Path

import pytest

from twin.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TWIN_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_point_at_the_local_stack() -> None:
    s = Settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.registry.url == "http://127.0.0.1:8081/apis/ccompat/v7"
    assert s.elasticsearch.url == "http://127.0.0.1:9200"
    assert s.cassandra.port == 9042
    assert all(s.is_local(n) for n in ("kafka", "registry", "cassandra", "elasticsearch"))


def test_moving_an_infra_port_moves_the_client_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_INFRA__KAFKA_PORT", "19092")
    s = Settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert s.is_local("kafka")


def test_production_cluster_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_KAFKA__BOOTSTRAP_SERVERS", "b1.plant:9094,b2.plant:9094")
    monkeypatch.setenv("TWIN_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TWIN_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TWIN_KAFKA__SASL_USERNAME", "twin")
    monkeypatch.setenv("TWIN_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("TWIN_KAFKA__SSL_CA_LOCATION", "/etc/ssl/plant-ca.pem")
    monkeypatch.setenv("TWIN_REGISTRY__URL", "https://registry.plant:8081")
    monkeypatch.setenv("TWIN_REGISTRY__USERNAME", "reg")
    monkeypatch.setenv("TWIN_REGISTRY__PASSWORD", "regpw")
    monkeypatch.setenv("TWIN_CASSANDRA__CONTACT_POINTS", '["c1.plant","c2.plant"]')
    monkeypatch.setenv("TWIN_CASSANDRA__USERNAME", "cass")
    monkeypatch.setenv("TWIN_ELASTICSEARCH__URL", "https://es.plant:9200")
    monkeypatch.setenv("TWIN_ELASTICSEARCH__API_KEY", "esk")
    s = Settings()

    conf = s.kafka.client_config()
    assert conf["bootstrap.servers"] == "b1.plant:9094,b2.plant:9094"
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.password"] == "s3cret"
    assert conf["ssl.ca.location"] == "/etc/ssl/plant-ca.pem"
    assert s.registry.client_config()["basic.auth.user.info"] == "reg:regpw"
    assert s.cassandra.contact_points == ["c1.plant", "c2.plant"]
    assert s.elasticsearch.client_kwargs()["api_key"] == "esk"
    assert not any(s.is_local(n) for n in ("kafka", "registry", "cassandra", "elasticsearch"))


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_KAFKA__SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("TWIN_ELASTICSEARCH__PASSWORD", "hunter3")
    s = Settings()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())
    assert "hunter3" not in repr(s)


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TWIN_INFRA__REGISTRY_PORT=18081\nTWIN_LOG_LEVEL=DEBUG\n")
    s = Settings()
    assert s.registry.url == "http://127.0.0.1:18081/apis/ccompat/v7"
    assert s.log_level == "DEBUG"


def test_kafka_without_sasl_has_no_sasl_keys() -> None:
    conf = Settings().kafka.client_config()
    assert not any(k.startswith(("sasl.", "ssl.")) for k in conf)


# Two long-running commands on one machine must not fight over one /metrics port.
METRICS_COMPONENTS = ("process", "sink-cassandra", "sink-elasticsearch", "produce")


def test_each_long_running_command_has_its_own_metrics_port() -> None:
    metrics = Settings().metrics
    ports = {name: metrics.port_for(name) for name in METRICS_COMPONENTS}
    assert ports == {"process": 9464, "sink-cassandra": 9465, "sink-elasticsearch": 9466, "produce": 9467}
    # None of them is a port the local servers or the gateway use.
    s = Settings()
    taken = {s.infra.kafka_port, s.infra.registry_port, s.infra.cassandra_port, s.infra.elasticsearch_port}
    assert not set(ports.values()) & (taken | {s.gateway.port})


def test_a_components_metrics_port_is_a_setting_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_METRICS__SINK_CASSANDRA_PORT", "19465")
    metrics = Settings().metrics
    assert metrics.port_for("sink-cassandra") == 19465
    assert metrics.port_for("process") == 9464


def test_one_metrics_port_for_every_component_still_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_METRICS__PORT", "9999")
    metrics = Settings().metrics
    assert {metrics.port_for(name) for name in METRICS_COMPONENTS} == {9999}


def test_an_unknown_metrics_component_is_a_config_error() -> None:
    from twin.errors import ConfigError

    with pytest.raises(ConfigError, match="process"):
        Settings().metrics.port_for("spark")
