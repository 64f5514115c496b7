"""The compiled encoder (twin._avroenc) neither leaks nor over-releases: reference counts of every
object it touches are unchanged after many calls, valid and invalid records alike (error paths are
where C extensions usually leak), and the process's memory stays flat over a million encodes.

``make asan`` runs this file (all but the ``slow`` RSS test: AddressSanitizer's quarantine grows
the heap by design) against an -fsanitize=address,undefined build as well.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import gc
import io
import sys
import types
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import fastavro
import psutil
import pytest

from schemas import load_schema
from twin.codec import ENCODE_FAILURES, NATIVE_AVAILABLE, NATIVE_UNAVAILABLE, native_encoder, native_plan

pytestmark = pytest.mark.skipif(not NATIVE_AVAILABLE, reason=NATIVE_UNAVAILABLE)

PREFIX = b"\x00\x00\x00\x00\x07"

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "leak.Event",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "count", "type": "int"},
        {"name": "total", "type": "long"},
        {"name": "ratio", "type": "double"},
        {"name": "share", "type": "float"},
        {"name": "flag", "type": "boolean"},
        {"name": "blob", "type": "bytes"},
        {"name": "tag", "type": {"type": "fixed", "name": "leak.Tag", "size": 4}},
        {"name": "colour", "type": {"type": "enum", "name": "leak.Colour", "symbols": ["RED", "GREEN"]}},
        {
            "name": "readings",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "leak.Reading",
                    "fields": [
                        {"name": "name", "type": "string"},
                        {"name": "value", "type": ["null", "double"]},
                    ],
                },
            },
        },
        {"name": "labels", "type": {"type": "map", "values": "string"}},
        {"name": "choice", "type": ["null", "long", "string", "leak.Reading"]},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "note", "type": "string", "default": "none"},
        {"name": "maybe", "type": ["null", "string"]},
        {
            "name": "extra",
            "type": ["null", {"type": "array", "items": "long"}, {"type": "map", "values": "long"}],
        },
    ],
}


def fresh(text: str) -> str:
    """A str object of its own (not interned, not shared with the schema or other records), so its
    reference count moves only with what the encoder does to it."""
    return "".join([text[:1], text[1:]])


class LazyReading(Mapping[str, Any]):
    """A record given as a Mapping that is not a dict: the encoder's PyObject_GetItem path."""

    def __init__(self, items: dict[str, Any]) -> None:
        self.data = items

    def __getitem__(self, key: str) -> Any:
        if key in self.data:
            return self.data[key]
        if "explode" in self.data:
            msg = "a broken mapping"
            raise RuntimeError(msg)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class Total(int):
    """An int subclass (as numpy's integers and IntEnums are): the encoder's __index__ path."""


def good(i: int) -> dict[str, Any]:
    return {
        fresh("id"): uuid.UUID(int=10**20 + i),
        fresh("at"): dt.datetime(2025, 11, 24, 12, 0, i % 60, tzinfo=dt.UTC),
        fresh("count"): 1000 + i,
        fresh("total"): Total(2**40 + i),
        fresh("ratio"): 0.25 + i,
        fresh("share"): 1.5 * i,
        fresh("flag"): i % 2 == 0,
        fresh("blob"): bytes([i % 256]) * 3,
        fresh("tag"): bytearray(b"wxyz"),
        fresh("colour"): fresh("GREEN"),
        fresh("readings"): [
            {fresh("name"): fresh("speed"), fresh("value"): 2.5 + i},
            LazyReading({fresh("name"): fresh("temp"), fresh("value"): None}),
        ],
        fresh("labels"): (dict if i % 2 else types.MappingProxyType)(
            {fresh("line"): fresh("line-1"), fresh("cell"): fresh("cell-7")}
        ),
        fresh("choice"): {fresh("name"): fresh("chosen"), fresh("value"): None},
        fresh("price"): decimal.Decimal(f"{i}.25"),
        fresh("maybe"): fresh("maybe") if i % 2 else None,
        fresh("extra"): ([1000 + i, 2**40], {fresh("extra"): 10**6 + i}, None)[i % 3],
    }


def _set(key: str, value: Callable[[], Any]) -> Callable[[dict[str, Any]], Any]:
    def change(record: dict[str, Any]) -> Any:
        record[fresh(key)] = value()
        return record

    return change


def _reading(value: Callable[[], Any]) -> Callable[[dict[str, Any]], Any]:
    def change(record: dict[str, Any]) -> Any:
        record["readings"].append(value())
        return record

    return change


def _without(key: str) -> Callable[[dict[str, Any]], Any]:
    def change(record: dict[str, Any]) -> Any:
        del record[key]
        return record

    return change


# One change per error path in native/avroenc.c: each gives a record that fastavro refuses too.
BREAKAGES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "missing field": _without("count"),
    "int out of range": _set("count", lambda: 2**40),
    "long overflow": _set("total", lambda: 2**70),
    "bool for int": _set("count", lambda: True),
    "str for double": _set("ratio", lambda: fresh("fast")),
    "str for float": _set("share", lambda: fresh("fast")),
    "int for boolean": _set("flag", lambda: 10**6),
    "str for bytes": _set("blob", lambda: fresh("blob")),
    "fixed size": _set("tag", lambda: b"abc" * 2),
    "unknown enum symbol": _set("colour", lambda: fresh("BLUE")),
    "wrong type in an array item": _reading(
        lambda: {fresh("name"): fresh("n"), fresh("value"): fresh("high")}
    ),
    "missing field in a Mapping item": _reading(lambda: LazyReading({fresh("value"): 1.5})),
    "a Mapping item that raises": _reading(lambda: LazyReading({fresh("explode"): 1})),
    "array given a dict": _set("readings", lambda: {fresh("name"): fresh("x")}),
    "map value": _set("labels", lambda: {fresh("ok"): fresh("fine"), fresh("bad"): 10**6}),
    "map key": _set("labels", lambda: {10**6: fresh("key")}),
    "union matches nothing": _set("choice", lambda: [1.5]),
    "union array with a bad item": _set("extra", lambda: [1, fresh("two")]),
    "union map with a bad value": _set("extra", lambda: types.MappingProxyType({fresh("k"): 1.5})),
    "map (not a dict) with a bad value": _set(
        "labels", lambda: types.MappingProxyType({fresh("bad"): 10**6})
    ),
    "union record with a bad field": _set("choice", lambda: {fresh("name"): 10**6, fresh("value"): None}),
    "surrogate in a string": _set("note", lambda: "".join(["a", "\ud800"])),
    "uuid logical given an int": _set("id", lambda: 10**12),
    "timestamp logical given a str": _set("at", lambda: fresh("yesterday")),
    "decimal logical given a str": _set("price", lambda: fresh("1.5")),
    "not a mapping": lambda record: [record],
}
# CPython's statically allocated objects start near 10**9 (immortal ones from 3.12 on even higher).
SHARED_REFCOUNT = 10**8
# What a refused record raises: ENCODE_FAILURES, or what the user's own Mapping raised.
REFUSED = (*ENCODE_FAILURES, RuntimeError)


def broken(i: int, name: str) -> Any:
    return BREAKAGES[name](good(i))


def reachable(value: Any, out: list[Any]) -> list[Any]:
    """Every object in ``value`` whose count the encoder could move, shared singletons (None, bools,
    small ints, the interpreter's static strings such as 'int') left out: other code moves theirs
    all the time."""
    if value is None or isinstance(value, bool) or (type(value) is int and -5 <= value <= 256):
        return out
    if sys.getrefcount(value) >= SHARED_REFCOUNT:
        return out
    out.append(value)
    if isinstance(value, dict):
        for key, item in value.items():
            reachable(key, out)
            reachable(item, out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            reachable(item, out)
    elif isinstance(value, LazyReading):
        reachable(value.data, out)
    elif isinstance(value, types.MappingProxyType):
        reachable(dict(value), out)
    return out


def counts(objects: list[Any]) -> list[int]:
    gc.collect()  # native_plan's closures form a cycle that holds the plan until a collection
    return [sys.getrefcount(o) for o in objects]


def moved(objects: list[Any], before: list[int], calls: int) -> list[tuple[str, int, int]]:
    """The objects whose reference count moved by at least half of ``calls``, with both counts.

    A reference the encoder leaks or drops on each call moves a count by ``calls``. A move of one or
    two is other code holding a widely shared object for a moment (seen once in CI: the string
    'array', 263 references before and 262 after); it says nothing about the encoder.
    """
    after = counts(objects)
    return [
        (repr(o)[:80], b, a)
        for o, b, a in zip(objects, before, after, strict=True)
        if abs(a - b) >= calls // 2
    ]


def fastavro_bytes(parsed: Any, record: Any) -> bytes:
    buf = io.BytesIO()
    buf.write(PREFIX)
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


def test_every_breakage_is_refused() -> None:
    """(fastavro is laxer with three of them: an int out of the int range, a bool for an int, an
    int for a boolean; it writes what it was given.)"""
    parsed = fastavro.parse_schema(SCHEMA)
    encoder = native_encoder(parsed, PREFIX)
    assert encoder is not None
    assert encoder.encode(good(3)) == fastavro_bytes(parsed, good(3))
    for name in BREAKAGES:
        with pytest.raises(REFUSED):
            encoder.encode(broken(3, name))


def test_encoding_leaves_every_reference_count_as_it_was() -> None:
    parsed = fastavro.parse_schema(SCHEMA)
    plan = native_plan(parsed)
    encoder = native_encoder(parsed, PREFIX)
    assert encoder is not None
    records = [good(7), good(8), good(9)]
    bad = [broken(9, name) for name in BREAKAGES]
    tracked = reachable(records, []) + reachable(bad, []) + reachable(plan, []) + [encoder, PREFIX]
    encoder.encode(records[0])  # the first call caches UTF-8 forms of the strings
    for record in bad:
        with pytest.raises(REFUSED):
            encoder.encode(record)
    before = counts(tracked)

    calls = 10_000
    for _ in range(calls):
        for record in records:
            encoder.encode(record)
        for record in bad:
            with contextlib.suppress(*REFUSED):
                encoder.encode(record)

    assert moved(tracked, before, calls) == []


def test_making_and_dropping_encoders_releases_the_plan() -> None:
    from twin import _avroenc  # type: ignore[attr-defined]

    parsed = fastavro.parse_schema(SCHEMA)
    plan = native_plan(parsed)
    union = next(i for i, node in enumerate(plan) if node[0] == "union")
    # Plans the constructor refuses after it has taken references from the nodes before the bad one.
    refused = [
        [*plan, ("record", "leak.Bad", (("x", len(plan) + 5, None),))],
        [*plan, ("enum", "leak.E", ("A", 5))],
        [*plan, ("union", (0, len(plan)))],
        [*plan, ("logical", union, len, {}, "int")],
    ]
    tracked = reachable(plan, []) + reachable(refused, []) + [PREFIX]
    before = counts(tracked)

    def make_and_drop() -> None:
        encoder = _avroenc.Encoder(plan, PREFIX)
        encoder.encode(good(1))
        for bad_plan in refused:
            with pytest.raises(ValueError, match="invalid encoding plan"):
                _avroenc.Encoder(bad_plan, PREFIX)

    calls = 2_000
    for _ in range(calls):
        make_and_drop()

    assert moved(tracked, before, calls) == []


def test_records_beyond_the_stack_buffer_encode_like_fastavro() -> None:
    """Records over 2 KiB leave the encoder's stack buffer for a heap one that grows."""
    parsed = fastavro.parse_schema(SCHEMA)
    encoder = native_encoder(parsed, PREFIX)
    assert encoder is not None
    for size in (2_030, 2_048, 2_100, 5_000, 300_000):
        record = good(size)
        record["note"] = "n" * size
        record["readings"] = [{"name": "r" * (i % 40), "value": float(i)} for i in range(size // 100)]
        record["labels"] = {f"k{i}": "v" * (i % 30) for i in range(size // 200)}
        assert encoder.encode(record) == fastavro_bytes(parsed, record)
        record["readings"].append({"name": 1})  # fails after the buffer grew: freed on the error path
        with pytest.raises(TypeError, match=r"readings\[\d+\]\.name"):
            encoder.encode(record)


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


@pytest.mark.slow
def test_a_million_encodes_keep_memory_flat() -> None:
    """10^6 encodes (a third valid telemetry, a third valid records of every type, a third
    refused) after a warm-up: the resident set grows by less than 2 MiB. A leak of 32 bytes on any
    one path would add more than 3 MiB."""
    telemetry_encoder = native_encoder(load_schema("telemetry").parsed, PREFIX)
    encoder = native_encoder(fastavro.parse_schema(SCHEMA), PREFIX)
    assert telemetry_encoder is not None and encoder is not None
    telemetry = {
        "event_id": "5f0c6b1e-0000-4000-8000-000000000001",
        "event_time": 1_764_000_000_000,
        "source": "sim",
        "correlation_id": "c",
        "line_id": "line-1",
        "machine_id": "cnc-1",
        "machine_type": "cnc",
        "channels": [
            {"name": "spindle", "value": 1.5, "unit": "mm/s"},
            {"name": "t", "value": None, "unit": ""},
        ],
    }
    big = good(1)
    big["note"] = "n" * 4_000  # beyond the stack buffer: every call allocates and frees a heap one
    valid = [good(i) for i in range(10)] + [big]
    refused = [broken(i, name) for i, name in enumerate(BREAKAGES)]
    rounds = 1_000_000 // (3 * len(refused))

    def run(n: int) -> int:
        done = 0
        for _ in range(n):
            for index, record in enumerate(refused):
                telemetry_encoder.encode(telemetry)
                encoder.encode(valid[index % len(valid)])
                with contextlib.suppress(*REFUSED):
                    encoder.encode(record)
                done += 3
        return done

    run(rounds // 10)
    start = rss()
    done = run(rounds)
    grown = rss() - start
    assert done >= 990_000
    assert grown < 2 * 1024 * 1024, f"RSS grew by {grown / 1024:.0f} KiB over {done:,} encodes"
