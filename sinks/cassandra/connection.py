"""A Cassandra connection for the sink, migrations and queries, with failures as one-line errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sinks.base import SinkError
from twin.clients import cassandra_cluster
from twin.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session


class CassandraUnreachable(SinkError):
    """No Cassandra node answered."""


def open_cluster(settings: Settings, **overrides: Any) -> Cluster:
    """A cluster that reconnects within seconds (see ``twin.clients.cassandra_cluster``)."""
    return cassandra_cluster(settings, **overrides)


def connect(settings: Settings, **overrides: Any) -> tuple[Cluster, Session]:
    """A connected cluster and session; :class:`CassandraUnreachable` names where it looked."""
    from cassandra import OperationTimedOut
    from cassandra.cluster import NoHostAvailable

    cluster = open_cluster(settings, **overrides)
    try:
        return cluster, cluster.connect()
    except (NoHostAvailable, OperationTimedOut, OSError) as exc:
        cluster.shutdown()
        cfg = settings.cassandra
        where = ",".join(f"{h}:{cfg.port}" for h in cfg.contact_points)
        msg = f"Cassandra at {where} is not reachable ({_reason(exc)}); is it running (`twin infra status`)?"
        raise CassandraUnreachable(msg) from exc


def _reason(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict) and errors:
        first = next(iter(errors.values()))
        return " ".join(str(first).split())[:200]
    return " ".join(str(exc).split())[:200] or type(exc).__name__
