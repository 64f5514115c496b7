"""Fixtures of the sink tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from sinks.elasticsearch import templates
from tests.conftest import unique


@pytest.fixture
def index_prefix(es: Elasticsearch, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh index prefix; its indices and templates are deleted afterwards."""
    name = unique("e2e", request, sep="-")
    yield name
    for index in es.options(ignore_status=404).indices.get_alias(index=f"{name}-*").body or {}:
        es.options(ignore_status=404).indices.delete(index=index)
    for template in templates(name):
        es.options(ignore_status=404).indices.delete_index_template(name=template)
