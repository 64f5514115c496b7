"""The one small contract every sink follows: ``setup()``, ``add(record)``, ``flush()``.

A sink buffers what ``add`` gives it and makes it durable in ``flush``. The runner
(``pipelines/sink_runner.py``) owns Kafka: it decodes records, calls ``add`` and ``flush``, sends
rejected records to the dead-letter topic and stores offsets only after ``flush`` returned.

Failure is split in two, because the two need opposite handling:

- the store is unreachable, overloaded or timing out: ``flush`` raises
  :class:`twin.errors.BackpressureError` with a retry-after and *keeps* every record it has not
  written. The runner pauses its partitions, waits, and calls ``flush`` again. Nothing is lost and
  memory stays bounded to one batch.
- one record can never be written (a value the store refuses, a mapping error): ``flush`` returns it
  in :attr:`FlushResult.rejected` with the reason, and the runner dead-letters it.

Writes are idempotent (keys from the event id or natural key), so flushing a record twice, after a
retry or a restart, leaves the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """One decoded Kafka record.

    ``topic`` is the catalog name without any prefix (``twin.alarms``); ``value`` is the Avro record
    in its plain wire form (timestamps as int epoch millis, uuids as str), as
    ``AvroCodec(logical_types=False)`` decodes it.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: dict[str, Any]
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record the store refused for good, and why (one line)."""

    record: SinkRecord
    reason: str


@dataclass(slots=True)
class FlushResult:
    """What one ``flush`` did: rows (or documents) written, retries it needed, records refused."""

    written: int = 0
    retries: int = 0
    rejected: list[Rejected] = field(default_factory=list)


@runtime_checkable
class Sink(Protocol):
    """A store writer. ``topics`` are the catalog topics it consumes."""

    name: str
    topics: tuple[str, ...]

    def setup(self) -> None:
        """Connect and check the target exists (schema migrated, templates installed)."""

    def add(self, record: SinkRecord) -> None:
        """Buffer one record. Raises ``Rejected``-worthy problems only at ``flush``."""

    def flush(self) -> FlushResult:
        """Write everything buffered. Raises ``BackpressureError`` keeping unwritten records."""
        ...

    def pending(self) -> int:
        """Records buffered and not yet written."""
        ...

    def close(self) -> None:
        """Release connections. Does not flush."""
