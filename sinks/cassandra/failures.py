"""Which Cassandra failures are worth retrying and which mean a record can never be written."""

from __future__ import annotations

import struct
from enum import StrEnum

from cassandra import (
    CoordinationFailure,
    InvalidRequest,
    OperationTimedOut,
    ReadTimeout,
    Unauthorized,
    Unavailable,
    WriteTimeout,
)
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.protocol import (
    ConfigurationException,
    IsBootstrappingErrorMessage,
    OverloadedErrorMessage,
    ServerError,
    SyntaxException,
)


class Failure(StrEnum):
    """What to do with a failed write (also the ``kind`` label of the error metric)."""

    timeout = "timeout"  # the write may or may not have happened: retry (it is idempotent)
    unavailable = "unavailable"  # too few replicas, overloaded, bootstrapping: retry later
    connection = "connection"  # no host, connection lost: retry once the driver reconnects
    rejected = "rejected"  # this record can never be written: dead-letter it
    fatal = "fatal"  # our setup is wrong (permissions, schema): stop the sink


RETRYABLE = frozenset({Failure.timeout, Failure.unavailable, Failure.connection})

# Binding a value the column type cannot take fails in the driver before anything is sent.
_BIND_ERRORS = (TypeError, ValueError, OverflowError, struct.error, KeyError)


# First match wins: the order matters (a WriteTimeout is also a RequestExecutionException).
_RULES: tuple[tuple[tuple[type[BaseException], ...], Failure], ...] = (
    ((WriteTimeout, ReadTimeout, OperationTimedOut), Failure.timeout),
    (
        (Unavailable, OverloadedErrorMessage, IsBootstrappingErrorMessage, CoordinationFailure),
        Failure.unavailable,
    ),
    ((NoHostAvailable, ConnectionException, OSError), Failure.connection),
    ((Unauthorized, SyntaxException, ConfigurationException), Failure.fatal),
    ((InvalidRequest, *_BIND_ERRORS), Failure.rejected),
    # An internal error of the coordinator: usually transient (a node restarting, short of memory).
    ((ServerError,), Failure.unavailable),
)


def classify(exc: BaseException) -> Failure:
    for types, failure in _RULES:
        if isinstance(exc, types):
            return failure
    return Failure.fatal
