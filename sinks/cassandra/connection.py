"""A Cassandra connection for the sink, migrations and queries, with failures as one-line errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twin.clients import cassandra_cluster
from twin.errors import CassandraUnreachableError, one_line
from twin.settings import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session


def open_cluster(settings: Settings, **overrides: Any) -> Cluster:
    """A cluster that reconnects within seconds (see ``twin.clients.cassandra_cluster``)."""
    return cassandra_cluster(settings, **overrides)


def connect(settings: Settings, **overrides: Any) -> tuple[Cluster, Session]:
    """A connected cluster and session; :class:`CassandraUnreachableError` names where it looked."""
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
        raise CassandraUnreachableError(msg) from exc


def _reason(exc: BaseException) -> str:
    # NoHostAvailable's own text lists every host's error as a dict repr; the first host's error
    # says the same more plainly.
    errors = getattr(exc, "errors", None)
    if isinstance(errors, dict) and errors:
        first = next(iter(errors.values()))
        if isinstance(first, BaseException):
            return one_line(first, 200)
    return one_line(exc, 200)
