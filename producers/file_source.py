"""Read external recordings (JSONL, CSV) as records of a topic's schema, validating each line.

JSONL: one JSON object per line in the topic's value schema; ``event_time`` may be ISO 8601 text
as in CSV. Header fields may be left out: a missing ``event_id`` is derived from the file's name,
the line number and the line's text (importing the same file again yields the same ids, so the
sinks store it once; another file never meets them), ``correlation_id`` defaults to it, ``source``
to the file name.

CSV (telemetry): a time column plus one column per signal; a header ``pressure_in [bar]`` or
``pressure_in (bar)`` gives the unit. An empty cell is a dropped sample (null). The machine id, its
type and its line come from ``machine_id``, ``machine_type`` and ``line_id`` columns or from
``--machine-id``, ``--machine-type`` and ``--line-id``; a line is never guessed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastavro.validation import ValidationError, validate

from producers.records import Outgoing

_UNIT = re.compile(r"^\s*(?P<name>[^\[\(]+?)\s*[\[\(](?P<unit>[^\]\)]*)[\]\)]\s*$")
_META_COLUMNS = {"machine_id", "line_id", "machine_type"}
_IDS = uuid.UUID("5f0c7d1e-3a52-4f0e-9a43-2b8c1f6a7e90")  # namespace of ids derived from file lines


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str


def parse_time_ms(value: str) -> int:
    """ISO 8601 (naive means UTC) or epoch seconds/milliseconds."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            from datetime import UTC

            stamp = stamp.replace(tzinfo=UTC)
        return int(stamp.timestamp() * 1000)
    if not math.isfinite(number):
        msg = f"time {text!r} is not finite"
        raise ValueError(msg)
    return int(number) if abs(number) >= 1e11 else int(number * 1000)  # ms vs s epochs


class FileSource:
    """Yields ``Outgoing`` for good lines and ``BadLine`` for the others, in file order."""

    def __init__(
        self,
        path: Path,
        topic: str,
        key_field: str,
        parsed_schema: Any,
        *,
        machine_id: str | None = None,
        line_id: str | None = None,
        machine_type: str | None = None,
        time_column: str = "time",
    ) -> None:
        self.path = path
        self.topic = topic
        self.key_field = key_field
        self.schema = parsed_schema
        self.machine_id = machine_id
        self.line_id = line_id
        self.machine_type = machine_type or ""
        self.time_column = time_column
        self.source = f"file:{path.name}"
        self._required = [f["name"] for f in parsed_schema["fields"] if "default" not in f]
        self._known = {f["name"] for f in parsed_schema["fields"]}

    def __iter__(self) -> Iterator[Outgoing | BadLine]:
        suffix = self.path.suffix.lower()
        if suffix in (".jsonl", ".ndjson", ".json"):
            yield from self._jsonl()
        elif suffix in (".csv", ".tsv"):
            yield from self._csv(delimiter="\t" if suffix == ".tsv" else ",")
        else:
            msg = f"{self.path}: unsupported file type {suffix!r} (use .jsonl or .csv)"
            raise ValueError(msg)

    def _finish(self, number: int, record: dict[str, Any], text: str) -> Outgoing | BadLine:
        if "event_id" not in record:
            digest = hashlib.sha256(text.encode()).hexdigest()
            record["event_id"] = str(uuid.uuid5(_IDS, f"{self.path.name}|{number}|{digest}"))
        record.setdefault("correlation_id", record["event_id"])
        record.setdefault("source", self.source)
        missing = [name for name in self._required if name not in record]
        if missing:
            return BadLine(number, f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        unknown = sorted(set(record) - self._known)
        if unknown:
            return BadLine(number, f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
        try:
            validate(record, self.schema, raise_errors=True, strict=True)
        except ValidationError as exc:
            return BadLine(number, _validation_reason(exc))
        key = record.get(self.key_field)
        return Outgoing(self.topic, str(key), record)

    def _jsonl(self) -> Iterator[Outgoing | BadLine]:
        with self.path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield BadLine(number, f"not JSON: {exc.msg} at column {exc.colno}")
                    continue
                if not isinstance(record, dict):
                    yield BadLine(number, f"expected a JSON object, got {type(record).__name__}")
                    continue
                stamp = record.get("event_time")
                if isinstance(stamp, str):
                    try:
                        record["event_time"] = parse_time_ms(stamp)
                    except ValueError:
                        why = f"event_time {stamp!r} is neither ISO 8601 nor epoch seconds/ms"
                        yield BadLine(number, why)
                        continue
                yield self._finish(number, record, line)

    def _csv(self, delimiter: str) -> Iterator[Outgoing | BadLine]:
        with self.path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                return
            columns = [_column(h) for h in header]
            names = [name for name, _ in columns]
            if self.time_column not in names:
                msg = f"{self.path}: no time column {self.time_column!r} (columns: {', '.join(names)})"
                raise ValueError(msg)
            time_idx = names.index(self.time_column)
            meta = {name: i for i, name in enumerate(names) if name in _META_COLUMNS}
            for name, given in (("machine_id", self.machine_id), ("line_id", self.line_id)):
                if given is None and name not in meta:
                    hint = " (or a plant file with --plant)" if name == "line_id" else ""
                    msg = f"{self.path}: give --{name.replace('_', '-')} or a {name} column{hint}"
                    raise ValueError(msg)
            signals = [(i, n, u) for i, (n, u) in enumerate(columns) if i != time_idx and n not in meta]
            for number, row in enumerate(reader, start=2):
                if not row or all(not cell.strip() for cell in row):
                    continue
                yield self._csv_row(number, row, len(header), time_idx, meta, signals)

    def _csv_row(
        self,
        number: int,
        row: list[str],
        width: int,
        time_idx: int,
        meta: dict[str, int],
        signals: list[tuple[int, str, str]],
    ) -> Outgoing | BadLine:
        if len(row) != width:
            return BadLine(number, f"{len(row)} cells, the header has {width}")
        try:
            event_time = parse_time_ms(row[time_idx])
        except ValueError:
            return BadLine(number, f"time {row[time_idx]!r} is neither ISO 8601 nor epoch seconds/ms")
        channels: list[dict[str, Any]] = []
        for idx, name, unit in signals:
            cell = row[idx].strip()
            if not cell:
                channels.append({"name": name, "value": None, "unit": unit})
                continue
            try:
                value = float(cell)
            except ValueError:
                return BadLine(number, f"column {name!r}: {cell!r} is not a number")
            if not math.isfinite(value):
                return BadLine(number, f"column {name!r}: {cell!r} is not finite")
            channels.append({"name": name, "value": value, "unit": unit})
        record: dict[str, Any] = {
            "event_time": event_time,
            "line_id": row[meta["line_id"]] if "line_id" in meta else self.line_id,
            "machine_id": row[meta["machine_id"]] if "machine_id" in meta else self.machine_id,
            "machine_type": row[meta["machine_type"]] if "machine_type" in meta else self.machine_type,
            "channels": channels,
        }
        return self._finish(number, record, "\x1f".join(row))


def _column(header: str) -> tuple[str, str]:
    match = _UNIT.match(header)
    if match:
        return match.group("name").strip(), match.group("unit").strip()
    return header.strip(), ""


_FASTAVRO_ERROR = re.compile(
    r"^(?P<path>\S+) is <(?P<value>.*)> of type <class '(?P<type>[\w.]+)'> expected (?P<exp>.+)$"
)


def _validation_reason(exc: ValidationError) -> str:
    """fastavro reports one message per union branch tried; merge them into one readable line."""
    messages: list[str] = []
    for item in getattr(exc, "error_list", None) or [str(exc)]:
        try:
            parsed = json.loads(item) if isinstance(item, str) and item.lstrip().startswith("[") else item
        except json.JSONDecodeError:
            parsed = item
        messages.extend(parsed if isinstance(parsed, list) else [parsed])
    expected: dict[tuple[str, str, str], list[str]] = {}
    other: list[str] = []
    for message in map(str, messages):
        match = _FASTAVRO_ERROR.match(message.strip())
        if match:
            key = (match.group("path").split(".")[-1], match.group("value"), match.group("type"))
            expected.setdefault(key, []).append(match.group("exp"))
        else:
            other.append(message.strip())
    parts = [
        f"{f} = {v!r} ({t}), expected {' or '.join(dict.fromkeys(e))}" for (f, v, t), e in expected.items()
    ]
    return "; ".join(parts + other)[:300]
