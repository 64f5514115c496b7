"""Fixtures shared by the gateway's integration tests (each module starts its own ``gateway``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.xr_gateway.gateway_helpers import Publisher, RunningGateway


@pytest.fixture(scope="module")
def publisher(gateway: RunningGateway) -> Iterator[Publisher]:
    """A producer into the module's gateway's topics."""
    pub = Publisher(gateway.settings, gateway.gw.topic_prefix)
    yield pub
    pub.close()
