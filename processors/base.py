"""The vocabulary every processor shares: plain records in, ``Emit``s out, deterministic derived ids.

A processor is pure (no Kafka, no I/O, no wall clock): the pipeline hands it decoded records in
their *plain wire form* and publishes what it returns. Plain form means what the Avro schema
carries before logical types are applied: ``event_time`` and other timestamps are ``int``
milliseconds since the epoch, uuids are ``str``, enums are their symbol ``str``, optional fields
are ``None``. ``plain()`` turns a record decoded with logical types into that form.

>>> derived_id("alarm", "cnc-1", "HighVibration", 1764000000000) == derived_id(
...     "alarm", "cnc-1", "HighVibration", 1764000000000
... )
True
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from twin.errors import TwinError

Record = dict[str, Any]

# Namespace of every derived event id (UUIDv5): the same inputs give the same id in every run,
# so a replay after a crash produces duplicates that sinks and tests can recognise by id.
ID_NAMESPACE = uuid.UUID("6f1c2a8e-4b7d-5e90-9a3c-2d1e0f4b8a71")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Emit:
    """One derived record for the pipeline to publish: catalog topic name, key, value record."""

    topic: str
    key: str
    record: Record


def derived_id(*parts: object) -> str:
    """A deterministic UUIDv5 of ``parts`` (joined with '|'): the id of a derived event."""
    return str(uuid.uuid5(ID_NAMESPACE, "|".join(str(p) for p in parts)))


def plain(value: Any) -> Any:
    """``value`` with logical types undone: datetimes to epoch ms, UUIDs to str (recursively)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        delta = aware - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return value


class SnapshotError(TwinError):
    """A processor snapshot cannot be restored (another format, a newer version, damaged JSON)."""


def load_snapshot(data: bytes, fmt: str, version: int) -> dict[str, Any]:
    """The JSON object of a snapshot, checked for its format name and version."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{fmt} snapshot is not JSON: {exc}"
        raise SnapshotError(msg) from None
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        msg = f"not a {fmt} snapshot"
        raise SnapshotError(msg)
    if obj.get("version") != version:
        msg = f"{fmt} snapshot version {obj.get('version')!r} is not supported (expected {version})"
        raise SnapshotError(msg)
    return obj
