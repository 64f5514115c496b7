"""Load and parse the project's Avro schemas once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastavro

from twin.errors import ConfigError

SCHEMA_DIR = Path(__file__).resolve().parent / "avro"


@dataclass(frozen=True)
class AvroSchema:
    """One event type's schema: its file stem, full name, JSON text and fastavro-parsed form."""

    key: str
    name: str
    text: str = field(repr=False)
    definition: dict[str, Any] = field(repr=False)
    parsed: Any = field(repr=False)

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in self.definition["fields"]]


def schema_names() -> list[str]:
    """Stems of every ``schemas/avro/*.avsc`` (e.g. ``telemetry``)."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.avsc"))


@cache
def load_schema(key: str) -> AvroSchema:
    """The schema ``schemas/avro/<key>.avsc``, parsed once per process."""
    path = SCHEMA_DIR / f"{key}.avsc"
    if not path.is_file():
        msg = f"no schema {key!r}; known: {', '.join(schema_names())}"
        raise ConfigError(msg)
    text = path.read_text()
    definition = json.loads(text)
    # The registry gets the canonical text: the same schema always yields the same id.
    canonical = json.dumps(definition, separators=(",", ":"), sort_keys=False)
    parsed: dict[str, Any] = fastavro.parse_schema(json.loads(text))  # type: ignore[assignment]
    return AvroSchema(key=key, name=str(parsed["name"]), text=canonical, definition=definition, parsed=parsed)
