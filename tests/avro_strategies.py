"""Hypothesis strategies that generate records for any (parsed) Avro schema."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
# timestamp-millis values a datetime can hold (fastavro returns datetimes for them)
_TS_MS = (0, 253402300799999)


def records(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for ``schema`` (a fastavro-parsed schema), as a user would build them."""
    return _strategy(schema, {})


def _strategy(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:  # noqa: PLR0911
    if isinstance(schema, str):
        if schema in named:
            return _strategy(named[schema], named)
        return _primitive(schema)
    if isinstance(schema, list):
        return st.one_of([_strategy(branch, named) for branch in schema])
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "uuid":
        return st.uuids().map(str)
    if logical == "timestamp-millis":
        return st.integers(*_TS_MS)
    if kind == "record":
        named[schema["name"]] = schema
        fields = {f["name"]: _strategy(f["type"], named) for f in schema["fields"]}
        return st.fixed_dictionaries(fields)
    if kind == "enum":
        named[schema["name"]] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_strategy(schema["items"], named), max_size=5)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), _strategy(schema["values"], named), max_size=4)
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    return _primitive(kind)


def _primitive(kind: str) -> st.SearchStrategy[Any]:
    table: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(*_INT32),
        "long": st.integers(*_INT64),
        "float": st.floats(width=32, allow_nan=False),
        "double": st.floats(allow_nan=False),
        "string": st.text(max_size=20),
        "bytes": st.binary(max_size=20),
    }
    return table[kind]


def normalise(value: Any) -> Any:
    """What fastavro returns for a written value: logical types come back as Python objects."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "timestamp") and hasattr(value, "tzinfo"):
        return round(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value
