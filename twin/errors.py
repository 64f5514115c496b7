"""The project's exception hierarchy: one root, a few precise subclasses."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic_core import ErrorDetails


class TwinError(Exception):
    """Root of every error Factory Twin raises on purpose.

    The CLI prints ``str(error)`` as one line and exits non-zero; ``--debug`` shows the traceback.
    """


class ConfigError(TwinError):
    """Settings are missing, inconsistent or point at something unusable."""


class ServerUnreachableError(ConfigError):
    """No server answered at the configured address; the message names it and the setting to change."""


class InfraError(TwinError):
    """A local server could not be fetched, started, checked or stopped."""


class PrerequisiteError(InfraError):
    """A tool the local stack needs (Java, Maven) is missing or too old."""


class PortInUseError(InfraError):
    """A port a local server needs is already taken by another process."""


class FetchError(InfraError):
    """Maven could not fetch a server's artifacts."""


class ServerCrashedError(InfraError):
    """A server process exited while starting; the message carries its last log lines."""


class HealthTimeoutError(InfraError):
    """A server did not become healthy within its time limit."""


class DecodeError(TwinError):
    """Bytes that are not a valid record: the reason goes into the dead-letter headers."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class EncodeError(TwinError):
    """A record that does not fit its schema."""


class RegistryUnavailableError(TwinError):
    """The registry could not be asked (an outage, not bad input): retry, never dead-letter."""


class DeliveryFailedError(TwinError):
    """Kafka reported a produced message as failed (after the client's own retries)."""


def one_line(exc: BaseException, limit: int = 500) -> str:
    """``exc`` as one line for a log, a dead-letter header or the CLI: ``Type: message``.

    >>> one_line(ValueError("bad\\n  value"))
    'ValueError: bad value'
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:limit]


# -- processing --------------------------------------------------------------------------------
class SnapshotError(TwinError):
    """A processor snapshot cannot be restored (another format, an unknown version, damaged data)."""


class KpiError(TwinError, ValueError):
    """A record or snapshot the KPI processors cannot use (the pipeline dead-letters it)."""


class ProcessingError(TwinError):
    """A processing step raised on a record: the record is dead-lettered with reason ``processing``
    and the step's id."""

    reason = "processing"

    def __init__(self, message: str, step: str = "") -> None:
        super().__init__(message)
        self.step = step


class SimulationError(TwinError):
    """An action, injected fault or run request the simulator cannot carry out (unknown machine, ...)."""


# -- sinks -------------------------------------------------------------------------------------
class SinkError(TwinError):
    """A sink is misconfigured or its store answered in a way that retrying cannot fix."""


class BackpressureError(TwinError):
    """The store cannot take writes now; try again after ``retry_after_s``. Nothing was dropped."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(f"{reason} (retry in {retry_after_s:.1f}s)")
        self.reason = reason
        self.retry_after_s = retry_after_s


class CassandraUnreachableError(SinkError):
    """No Cassandra node answered."""


class MigrationError(SinkError):
    """A keyspace migration failed or the applied ones do not match the files."""


class MappingError(TwinError, ValueError):
    """An event value no table can hold (an impossible time, an id that is not a uuid)."""


class DocumentError(TwinError, ValueError):
    """The record cannot become a document (no event id, an event time that is not a time)."""


class SinkRejectionError(TwinError):
    """The store refused a record for good (the reason is the store's)."""


class SearchError(TwinError):
    """A search that cannot run (a malformed query, an unreachable or unready Elasticsearch)."""


# -- gateway -----------------------------------------------------------------------------------
class HistoryUnavailableError(TwinError):
    """The Cassandra history cannot answer now: unreachable, timing out, or the keyspace is not
    migrated. The message is one line, fit for an HTTP 503 body."""


class FilterError(TwinError):
    """A subscription filter the gateway cannot apply."""


class AuthError(TwinError):
    """A token that does not let its bearer in; the message says why (safe to show the client)."""


class CommandError(TwinError):
    """An operator command the gateway cannot carry out."""


# -- analytics ---------------------------------------------------------------------------------
class AnalyticsError(TwinError):
    """A Spark analytics job that cannot run or finish: Java missing, packages unresolved, a store
    down, an empty period. One line (the CLI prints it and exits non-zero)."""


class EmptyPeriodError(AnalyticsError):
    """The requested period holds no history to report on."""


_LEADING_PATH = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): ")
M = TypeVar("M", bound="BaseModel")


def validated(model: type[M], data: object, source: str, kind: str) -> M:
    """``data`` (loaded YAML) as ``model``; else one ``ConfigError`` line naming ``source`` and the
    first problem's field (``lines[0].stations[2].scrap_probability: ... (got 1.5)``)."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        msg = f"{source}: a {kind} is a mapping with a 'lines' list, got {type(data).__name__}"
        raise ConfigError(msg)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        every = exc.errors()
        # Pydantic also reports a tuple whose item failed as "too short": not a problem of its own.
        errors = [
            e
            for e in every
            if not (
                e["type"] == "too_short"
                and any(o["loc"][: len(e["loc"])] == e["loc"] and o is not e for o in every)
            )
        ]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        msg = f"{source}: {describe(errors[0])}{more}"
        raise ConfigError(msg) from None


def describe(error: ErrorDetails) -> str:
    """One pydantic error as ``path.to[0].field: message (got value)``."""
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    text = error["msg"].removeprefix("Value error, ")
    # Model-level validators name the sub-field at the start of their message; fold it into the path.
    inner = _LEADING_PATH.match(text)
    if inner:
        path = f"{path}.{inner[1]}" if path else inner[1]
        text = text[inner.end() :]
    value = error.get("input")
    got = f" (got {value!r})" if isinstance(value, str | int | float | bool) else ""
    return f"{path}: {text}{got}" if path else f"{text}{got}"
