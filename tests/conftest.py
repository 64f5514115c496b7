"""Session fixtures: the real local servers, and unique names so tests never share state.

Servers that ``twin infra status`` reports healthy are reused; missing ones are started once per
session (in parallel) and stopped at the end unless ``--keep-servers``. A server that cannot start
fails the run: a green run means the integration tests ran. ``--allow-missing-servers`` skips them
instead, with the reason (``make test PYTEST_ARGS=--allow-missing-servers``); with ``CI=true`` it
is ignored.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from localstack import Infra
from twin.errors import TwinError
from twin.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Session
    from elasticsearch import Elasticsearch

log = logging.getLogger("tests.infra")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--keep-servers",
        action="store_true",
        help="leave servers started by the test session running afterwards",
    )
    parser.addoption(
        "--allow-missing-servers",
        action="store_true",
        help="skip the integration tests when the local servers cannot start (default: fail; "
        "ignored with CI=true)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def stack(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Infra]:
    """All four servers, healthy."""
    infra = Infra(settings, on_event=lambda server, message: log.warning("%s: %s", server, message))
    try:
        started = infra.up()
    except TwinError as exc:
        if settings.ci:
            pytest.fail(f"local servers could not start (CI=true, so this fails): {exc}", pytrace=False)
        if not request.config.getoption("--allow-missing-servers"):
            msg = f"local servers could not start: {exc} (--allow-missing-servers skips these tests instead)"
            pytest.fail(msg, pytrace=False)
        pytest.skip(f"local servers unavailable: {exc}")
    yield infra
    if started and not request.config.getoption("--keep-servers"):
        infra.down(started)


def unique(prefix: str, request: pytest.FixtureRequest, sep: str = "_") -> str:
    test = re.sub(r"[^a-z0-9]+", sep, request.node.name.lower()).strip(sep)[:30]
    return f"{prefix}{sep}{test}{sep}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic(stack: Infra, settings: Settings, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh 3-partition topic, deleted afterwards."""
    from confluent_kafka.admin import NewTopic

    from twin.clients import kafka_admin

    name = unique("test", request, sep=".")
    admin = kafka_admin(settings)
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result(30)
    yield name
    admin.delete_topics([name])[name].result(30)


@pytest.fixture
def keyspace(stack: Infra, cassandra: Session, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh keyspace, dropped afterwards."""
    name = unique("test", request)
    cassandra.execute(
        f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
    )
    yield name
    cassandra.execute(f"DROP KEYSPACE IF EXISTS {name}")


@pytest.fixture(scope="session")
def cassandra(stack: Infra, settings: Settings) -> Iterator[Session]:
    from twin.clients import cassandra_cluster

    cluster = cassandra_cluster(settings)
    session = cluster.connect()
    yield session
    cluster.shutdown()


@pytest.fixture(scope="session")
def es(stack: Infra, settings: Settings) -> Iterator[Elasticsearch]:
    from twin.clients import elasticsearch

    client = elasticsearch(settings)
    yield client
    client.close()


@pytest.fixture
def es_index(es: Elasticsearch, request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique index name (not created); deleted afterwards if a test created it."""
    name = unique("test", request, sep="-")
    yield name
    es.options(ignore_status=404).indices.delete(index=name)


@pytest.fixture
def subject(request: pytest.FixtureRequest) -> str:
    return unique("test", request, sep=".") + "-value"


def pytest_report_header(config: pytest.Config) -> list[str]:
    s = Settings()
    lines: list[str] = [
        f"kafka={s.kafka.bootstrap_servers} registry={s.registry.url}",
        f"cassandra={','.join(s.cassandra.contact_points)}:{s.cassandra.port} es={s.elasticsearch.url}",
    ]
    return lines


def pytest_configure(config: pytest.Config) -> None:
    # The session fixture reports each server's start on this logger; show it in the live log.
    logging.getLogger("tests.infra").setLevel(logging.INFO)
