"""Before a command starts its work: the servers it needs answer, or one line says which does not."""

from __future__ import annotations

from twin.clients import check_kafka, check_registry
from twin.settings import Settings


def require(settings: Settings, *, registry: bool = True) -> None:
    """Kafka (and the registry) answer, or a ServerUnreachableError names the address and the setting.

    The registry is asked first: one HTTP request, answered or refused at once.
    """
    if registry:
        check_registry(settings)
    check_kafka(settings)
