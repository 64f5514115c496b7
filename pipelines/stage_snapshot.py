"""A stage's snapshot of one key: its steps' snapshots, the input positions and the dedup state it
reflects, as one JSON document (format and versions: docs/processing.md).

>>> data = dump_stage_snapshot("line-stage", "line-1", {"t:0": 41}, {}, {"line-kpi": b'{"format":"x"}'})
>>> data
b'{"format":"line-stage","version":2,"key":"line-1","positions":{"t:0":41},"dedup":{},"steps":{"line-kpi":{"format":"x"}}}'
>>> state = load_stage_snapshot(data, "line-stage", {})
>>> state.positions, state.steps
({'t:0': 41}, {'line-kpi': b'{"format":"x"}'})

Version 1 was a binary pack (``FTW1``: magic, a JSON index of part sizes, the parts). It is read
without interpreting the part that held the anomaly detectors (a pickle): ``migrated_from`` and
``dropped`` say what happened, and the caller logs it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.base import load_snapshot, parse_snapshot
from twin.errors import SnapshotError

VERSION = 2
"""2: this JSON document. 1: the ``FTW1`` binary pack, migrated on read."""

LEGACY_MAGIC = b"FTW1"


@dataclass
class StageState:
    """What a stage snapshot holds for one key."""

    positions: dict[str, int] = field(default_factory=dict)
    """``topic:partition`` -> offset of the last input folded into the state."""
    dedup: dict[str, Any] = field(default_factory=dict)
    """The stage's own duplicate-detection state (the line stage's forwarded-event marks)."""
    steps: dict[str, bytes] = field(default_factory=dict)
    """Each step's snapshot by step id."""
    migrated_from: int | None = None
    """The older version this was read from (None: the current one)."""
    dropped: list[str] = field(default_factory=list)
    """Parts of an older version left out (their steps start fresh)."""


def dump_stage_snapshot(
    fmt: str, key: str, positions: Mapping[str, int], dedup: Mapping[str, Any], steps: Mapping[str, bytes]
) -> bytes:
    """The document, with each step's snapshot (a JSON object) embedded as is under its id."""
    head = json.dumps(
        {"format": fmt, "version": VERSION, "key": key, "positions": positions, "dedup": dedup},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    parts = [head[:-1], b',"steps":{']
    for i, (step_id, data) in enumerate(steps.items()):
        if not data.startswith(b"{"):
            msg = f"step {step_id!r} wrote a snapshot that is not a JSON object"
            raise SnapshotError(msg)
        parts += [b"," if i else b"", json.dumps(step_id).encode(), b":", data]
    parts.append(b"}}")
    return b"".join(parts)


def load_stage_snapshot(data: bytes, fmt: str, legacy_parts: Mapping[str, str]) -> StageState:
    """A stage snapshot of format ``fmt``; version 1 is migrated (``legacy_parts`` maps its part
    names to step ids; parts not named are dropped unread). Anything else is a ``SnapshotError``
    naming what was found."""
    if data.startswith(LEGACY_MAGIC):
        return _migrate_v1(data, fmt, legacy_parts)
    doc = load_snapshot(parse_snapshot(data, fmt), fmt, VERSION)
    try:
        positions = {str(k): int(v) for k, v in doc["positions"].items()}
        dedup = dict(doc.get("dedup") or {})
        steps = {
            str(k): json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()
            for k, v in doc["steps"].items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        msg = f"{fmt} snapshot version {VERSION} is damaged: {type(exc).__name__}: {exc}"
        raise SnapshotError(msg) from None
    return StageState(positions, dedup, steps)


def _migrate_v1(data: bytes, fmt: str, legacy_parts: Mapping[str, str]) -> StageState:
    """Version 1: ``pack({"meta": positions and dedup JSON, "twin": pack({part: bytes})})``. The JSON
    parts are kept; any other part (the anomaly pickle) is dropped without being read."""
    outer = _unpack(data, fmt)
    try:
        meta = json.loads(outer["meta"])
        positions = {str(k): int(v) for k, v in meta["positions"].items()}
        dedup = dict(meta.get("extra") or {})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        msg = f"{fmt} snapshot version 1 (FTW1) has no readable positions: {type(exc).__name__}: {exc}"
        raise SnapshotError(msg) from None
    state = StageState(positions, dedup, migrated_from=1)
    for name, part in _unpack(outer.get("twin", b""), fmt).items():
        step_id = legacy_parts.get(name)
        if step_id is None:
            state.dropped.append(name)
        elif part:
            state.steps[step_id] = part
    return state


def _unpack(data: bytes, fmt: str) -> dict[str, bytes]:
    """The named parts of a version 1 pack; only the JSON index is parsed, never a part."""
    if not data.startswith(LEGACY_MAGIC):
        msg = f"{fmt} snapshot version 1 (FTW1) is damaged: a part is not a pack"
        raise SnapshotError(msg)
    try:
        (size,) = struct.unpack_from(">I", data, len(LEGACY_MAGIC))
        start = len(LEGACY_MAGIC) + 4
        index = json.loads(data[start : start + size])
        offset = start + size
        parts: dict[str, bytes] = {}
        for name, length in index:
            if int(length) < 0 or offset + int(length) > len(data):
                msg = f"part {name!r} runs past the end"
                raise ValueError(msg)
            parts[str(name)] = data[offset : offset + int(length)]
            offset += int(length)
    except (struct.error, ValueError, TypeError) as exc:
        msg = f"{fmt} snapshot version 1 (FTW1) is damaged: {type(exc).__name__}: {exc}"
        raise SnapshotError(msg) from None
    if offset != len(data):
        msg = f"{fmt} snapshot version 1 (FTW1) has {len(data) - offset} unexpected trailing bytes"
        raise SnapshotError(msg)
    return parts
