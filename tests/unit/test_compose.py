"""docker-compose.yml offers the same stack as `twin infra`: same servers, versions and ports.

Docker cannot run on our CI machines, so this keeps the file honest by reading it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from localstack.servers import SERVER_TYPES
from twin.settings import InfraSettings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, object]]:
    data = yaml.safe_load(COMPOSE.read_text())
    return dict(data["services"])


def published(service: dict[str, object]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each ``ports`` entry; no address means all."""
    ports = service.get("ports", [])
    assert isinstance(ports, list)
    out = []
    for entry in ports:
        parts = str(entry).split(":")
        address = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((address, int(parts[-2]), int(parts[-1])))
    return out


def host_ports(service: dict[str, object]) -> set[int]:
    return {host_port for _, host_port, _ in published(service)}


def test_same_servers(services: dict[str, dict[str, object]]) -> None:
    assert set(services) == set(SERVER_TYPES)


def test_client_ports_match_local_defaults(services: dict[str, dict[str, object]]) -> None:
    infra = InfraSettings()
    assert host_ports(services["kafka"]) == {infra.kafka_port}
    assert host_ports(services["cassandra"]) == {infra.cassandra_port}
    assert host_ports(services["elasticsearch"]) == {infra.elasticsearch_port}
    assert host_ports(services["registry"]) == {infra.registry_port}


@pytest.mark.parametrize("name", sorted(SERVER_TYPES))
def test_image_version_matches_local_server(services: dict[str, dict[str, object]], name: str) -> None:
    image = str(services[name]["image"])
    assert image.rsplit(":", 1)[1] == SERVER_TYPES[name].version


@pytest.mark.parametrize("name", sorted(SERVER_TYPES))
def test_servers_are_published_on_loopback_only(services: dict[str, dict[str, object]], name: str) -> None:
    """The stack has no auth: like `twin infra`, it must not be reachable from the network."""
    addresses = {address for address, _, _ in published(services[name])}
    assert addresses == {"127.0.0.1"}


def test_kafka_advertises_the_host_port(services: dict[str, dict[str, object]]) -> None:
    env = services["kafka"]["environment"]
    assert isinstance(env, dict)
    assert f"127.0.0.1:{InfraSettings().kafka_port}" in env["KAFKA_ADVERTISED_LISTENERS"]
