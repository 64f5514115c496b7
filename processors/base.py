"""The vocabulary every processor shares: plain records in, ``Emit``s out, one processor shape, one
snapshot format, deterministic derived ids.

A processor is pure (no Kafka, no I/O, no wall clock): the pipeline hands it decoded records in
their *plain wire form* and publishes what it returns. Plain form means what the Avro schema
carries before logical types are applied: ``event_time`` and other timestamps are ``int``
milliseconds since the epoch, uuids are ``str``, enums are their symbol ``str``, optional fields
are ``None``. ``plain()`` turns a record decoded with logical types into that form.

>>> derived_id("alarm", "cnc-1", "HighVibration", 1764000000000) == derived_id(
...     "alarm", "cnc-1", "HighVibration", 1764000000000
... )
True

Snapshots are UTF-8 JSON objects naming their format and version (docs/processing.md):

>>> data = dump_snapshot("example", 2, {"count": 3})
>>> data
b'{"format":"example","version":2,"count":3}'
>>> load_snapshot(data, "example", 2)["count"]
3
>>> upgrades = {1: lambda doc: {**doc, "count": doc.pop("n")}}  # what version 1 called ``n``
>>> load_snapshot(b'{"format":"example","version":1,"n":5}', "example", 2, upgrades)["count"]
5
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from twin.errors import SnapshotError

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


class Processor(Protocol):
    """The one shape of every processor: a per-key object (one machine, or one line) built with its
    key and its configuration.

    - ``process_one(topic, record)``: apply one record of a catalog topic (plain form); returns what
      it derives. A topic the processor does not consume gives ``[]``: which topics reach it is
      decided by the step declaration that wires it (processors/stages.py).
    - ``advance(event_time_ms)``: event time moved on without input (the partition's watermark);
      returns what is due by then (windows that close, duration rules that fire).
    - ``snapshot()`` / ``restore(data)``: the whole state as a versioned UTF-8 JSON object (see
      ``dump_snapshot``); a restored processor continues with exactly the outputs the original
      would have produced.
    """

    def process_one(self, topic: str, record: Record) -> list[Emit]: ...

    def advance(self, event_time_ms: int) -> list[Emit]: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


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


# -- snapshots -------------------------------------------------------------------------------------

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns a snapshot document of version ``v`` into one of version ``v + 1``."""


def dump_snapshot(fmt: str, version: int, body: Mapping[str, Any]) -> bytes:
    """``{"format": fmt, "version": version, **body}`` as compact UTF-8 JSON: the one snapshot format."""
    doc = {"format": fmt, "version": version, **body}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def parse_snapshot(data: bytes, fmt: str) -> dict[str, Any]:
    """The JSON object in ``data``, unchecked; a ``SnapshotError`` when it is not one."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{fmt} snapshot is not JSON: {exc}"
        raise SnapshotError(msg) from None
    if not isinstance(obj, dict):
        msg = f"not a {fmt} snapshot (a JSON {type(obj).__name__}, not an object)"
        raise SnapshotError(msg)
    return obj


def load_snapshot(
    data: bytes | Mapping[str, Any],
    fmt: str,
    version: int,
    upgrades: Mapping[int, Upgrade] | None = None,
    *,
    old_names: Collection[str] = (),
) -> dict[str, Any]:
    """The document of a snapshot (bytes, or an already parsed object), checked for its format name
    and brought to ``version``.

    An older version is upgraded step by step with ``upgrades[v]`` (version ``v`` to ``v + 1``);
    ``old_names`` are names earlier releases gave this format. Any other name or version is a
    ``SnapshotError`` whose one line names what was found.
    """
    obj = parse_snapshot(data, fmt) if isinstance(data, bytes | bytearray) else dict(data)
    name = obj.get("format")
    if name != fmt and name not in old_names:
        msg = f"not a {fmt} snapshot (format {name!r})"
        raise SnapshotError(msg)
    found = obj.get("version")
    steps = upgrades or {}
    current = found
    while isinstance(current, int) and not isinstance(current, bool) and current < version:
        upgrade = steps.get(current)
        if upgrade is None:
            break
        try:
            obj = upgrade(obj)
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"{fmt} snapshot version {current} cannot be upgraded: {type(exc).__name__}: {exc}"
            raise SnapshotError(msg) from None
        current += 1
    if current != version:
        known = ", ".join(str(v) for v in sorted({*steps, version}))
        msg = f"{fmt} snapshot version {found!r} is not supported (this build reads versions {known})"
        raise SnapshotError(msg)
    obj["format"], obj["version"] = fmt, version
    return obj
