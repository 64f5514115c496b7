"""The compiled Avro encoder (twin._avroenc): byte for byte what fastavro writes, clear errors otherwise."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import logging
import tomllib
import types
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import load_schema, schema_names
from tests.avro_strategies import records
from twin import codec as codec_module
from twin.codec import (
    FASTAVRO_VERSION,
    NATIVE_AVAILABLE,
    NATIVE_UNAVAILABLE,
    AvroCodec,
    native_encoder,
)
from twin.errors import EncodeError
from twin.settings import Settings

ROOT = Path(__file__).resolve().parents[3]

PREFIX = b"\x00\x00\x00\x00\x2a"

needs_native = pytest.mark.skipif(not NATIVE_AVAILABLE, reason=NATIVE_UNAVAILABLE)

# Every Avro type and the union rules fastavro applies (first match, most shared fields between
# records, "double" preferred over "float"), with named types referenced after their definition.
EVERYTHING: dict[str, Any] = {
    "type": "record",
    "name": "test.Everything",
    "fields": [
        {"name": "n", "type": "null"},
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "by", "type": "bytes"},
        {"name": "s", "type": "string"},
        {"name": "fx", "type": {"type": "fixed", "name": "test.Four", "size": 4}},
        {"name": "e", "type": {"type": "enum", "name": "test.Colour", "symbols": ["RED", "GREEN", "BLUE"]}},
        {
            "name": "arr",
            "type": {"type": "array", "items": {"type": "map", "values": ["null", "long", "string"]}},
        },
        {"name": "m", "type": {"type": "map", "values": "test.Colour"}},
        {
            "name": "u",
            "type": ["null", "int", "string", {"type": "fixed", "name": "test.Three", "size": 3}, "boolean"],
        },
        {"name": "fd", "type": ["float", "double"]},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "opt_ts", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {
            "name": "inner",
            "type": {"type": "record", "name": "test.Inner", "fields": [{"name": "x", "type": "long"}]},
        },
        {
            "name": "either",
            "type": [
                "null",
                "test.Inner",
                {
                    "type": "record",
                    "name": "test.Wider",
                    "fields": [{"name": "x", "type": "long"}, {"name": "y", "type": "string"}],
                },
            ],
        },
    ],
}


def fastavro_bytes(parsed: Any, record: Any) -> bytes:
    buf = io.BytesIO()
    buf.write(PREFIX)
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


def compiled(schema: Any) -> tuple[Any, codec_module.NativeEncoder]:
    parsed = fastavro.parse_schema(schema)
    encoder = native_encoder(parsed, PREFIX)
    assert encoder is not None
    return parsed, encoder


class StubRegistry:
    """Just enough of SchemaRegistryClient for AvroCodec: ids in registration order."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def register_schema(self, subject: str, schema: Any) -> int:
        self.texts.append(schema.schema_str)
        return len(self.texts)


def test_extension_is_built() -> None:
    if not NATIVE_AVAILABLE:
        if Settings().ci:
            pytest.fail(f"CI=true and {NATIVE_UNAVAILABLE}: `make setup` must build native/avroenc.c")
        pytest.skip(NATIVE_UNAVAILABLE)
    assert native_encoder(load_schema("telemetry").parsed) is not None


def test_fastavro_is_the_release_the_encoder_was_checked_against() -> None:
    """native_plan reads fastavro internals: another release may change them under us."""
    assert fastavro.__version__ == FASTAVRO_VERSION, (
        f"fastavro {fastavro.__version__} is installed but twin.codec is checked against "
        f"{FASTAVRO_VERSION}: run `make setup` (it installs the pinned one), or, to move to a new "
        "release, change FASTAVRO_VERSION, the pin in pyproject.toml and constraints.txt together "
        "and run these tests and `make asan`"
    )


def test_the_pin_is_exact_and_the_same_everywhere() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"fastavro=={FASTAVRO_VERSION}" in project["dependencies"]
    constraints = (ROOT / "constraints.txt").read_text().splitlines()
    assert f"fastavro=={FASTAVRO_VERSION}" in constraints


def test_another_fastavro_release_turns_the_extension_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastavro, "__version__", "1.99.0")
    module, reason = codec_module._load_native()
    assert module is None
    assert "fastavro 1.99.0 is installed" in reason and FASTAVRO_VERSION in reason


@needs_native
@pytest.mark.parametrize("key", schema_names())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_schema_encodes_like_fastavro(key: str, data: st.DataObject) -> None:
    parsed = load_schema(key).parsed
    encoder = native_encoder(parsed, PREFIX)
    assert encoder is not None
    record = data.draw(records(parsed))
    assert encoder.encode(record) == fastavro_bytes(parsed, record)


@needs_native
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_avro_type_encodes_like_fastavro(data: st.DataObject) -> None:
    parsed, encoder = compiled(EVERYTHING)
    record = data.draw(records(parsed))
    assert encoder.encode(record) == fastavro_bytes(parsed, record)


@needs_native
def test_logical_inputs_are_converted_like_fastavro() -> None:
    parsed, encoder = compiled(EVERYTHING)
    base = {
        "n": None, "b": True, "i": -1, "l": 2**40, "f": 0.5, "d": -1e300, "by": b"\x00\xff", "s": "grüße",
        "fx": bytearray(b"wxyz"), "e": "BLUE", "arr": ({"k": 1, "z": None},),
        "m": {"a": "RED"}, "u": b"two", "fd": 3, "inner": {"x": 1}, "either": {"x": 1, "y": "wide"},
    }  # fmt: skip
    moments = [
        dt.datetime(2025, 11, 24, 12, 30, 1, 999_999, tzinfo=dt.UTC),
        dt.datetime(2025, 11, 24, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2025, 11, 24, 12, 30),  # naive: fastavro reads it as local time; so must we
        1_764_000_000_000,
    ]
    for moment in moments:
        record = {
            **base, "ts": moment, "opt_ts": moment, "uid": uuid.UUID(int=7, version=4), "day": dt.date(2025, 11, 24),
        }  # fmt: skip
        assert encoder.encode(record) == fastavro_bytes(parsed, record)


@needs_native
def test_decimals_recursion_defaults_and_other_mappings() -> None:
    schema = {
        "type": "record",
        "name": "test.Node",
        "fields": [
            {
                "name": "price",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2},
            },
            {
                "name": "fixed_price",
                "type": {
                    "type": "fixed",
                    "name": "test.Money",
                    "size": 8,
                    "logicalType": "decimal",
                    "precision": 9,
                    "scale": 2,
                },
            },
            {"name": "label", "type": "string", "default": "none"},
            {"name": "weight", "type": "double", "default": 1},
            {"name": "maybe", "type": ["null", "string"]},
            {"name": "tags", "type": {"type": "map", "values": "long"}, "default": {"a": 1}},
            {"name": "next", "type": ["null", "test.Node"], "default": None},
        ],
    }
    parsed, encoder = compiled(schema)
    leaf = {"price": decimal.Decimal("-12.34"), "fixed_price": decimal.Decimal("99.99")}
    chain: dict[str, Any] = {**leaf, "label": "a", "next": {**leaf, "next": {**leaf, "tags": {"x": -5}}}}
    assert encoder.encode(leaf) == fastavro_bytes(parsed, leaf)
    assert encoder.encode(chain) == fastavro_bytes(parsed, chain)
    proxy = types.MappingProxyType(chain)
    assert encoder.encode(proxy) == fastavro_bytes(parsed, proxy)

    class Lazy(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            return leaf[key]

        def __iter__(self) -> Iterator[str]:
            return iter(leaf)

        def __len__(self) -> int:
            return len(leaf)

    assert encoder.encode(Lazy()) == fastavro_bytes(parsed, leaf)


def telemetry() -> dict[str, Any]:
    return {
        "event_id": "5f0c6b1e-0000-4000-8000-000000000001",
        "event_time": 1_764_000_000_000,
        "source": "test",
        "correlation_id": "c",
        "line_id": "line-1",
        "machine_id": "cnc-1",
        "machine_type": "cnc",
        "channels": [{"name": "a", "value": 1.5, "unit": "mm/s"}, {"name": "b", "value": None, "unit": ""}],
    }


@needs_native
@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        (lambda r: r.pop("source"), ValueError, ["missing field 'source'"]),
        (lambda r: r["channels"][1].pop("name"), ValueError, ["channels[1]", "missing field 'name'"]),
        (lambda r: r["channels"][1].update(value="high"), TypeError, ["channels[1].value", "str"]),
        (lambda r: r.update(event_time=2**63), ValueError, ["event_time", "out of range"]),
        (lambda r: r.update(event_time=1.5), TypeError, ["event_time", "float"]),
        (lambda r: r.update(machine_id=None), TypeError, ["machine_id", "expected string"]),
        (lambda r: r.update(channels={"name": "a"}), TypeError, ["channels", "array"]),
        (lambda r: r["channels"].append(3), TypeError, ["channels[2]", "mapping"]),
        (lambda r: r.update(source="\ud800"), ValueError, ["source", "surrogates"]),
    ],
)
def test_invalid_telemetry_names_the_field(change: Any, error: type[Exception], words: list[str]) -> None:
    encoder = native_encoder(load_schema("telemetry").parsed)
    assert encoder is not None
    record = telemetry()
    change(record)
    with pytest.raises(error) as raised:
        encoder.encode(record)
    for word in words:
        assert word in str(raised.value)


@needs_native
def test_invalid_enum_int_and_fixed_values() -> None:
    _, encoder = compiled(
        {
            "type": "record",
            "name": "test.Small",
            "fields": [
                {"name": "e", "type": {"type": "enum", "name": "test.E", "symbols": ["A", "B"]}},
                {"name": "i", "type": "int"},
                {"name": "fx", "type": {"type": "fixed", "name": "test.Two", "size": 2}},
                {"name": "flag", "type": "boolean"},
                {"name": "opt", "type": ["null", "int", "string"]},
            ],
        }
    )
    good = {"e": "A", "i": 1, "fx": b"ab", "flag": False, "opt": None}
    assert encoder.encode(good)
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"e": "C"}, ValueError, "'C' is not a symbol of enum test.E"),
        ({"i": 2**31}, ValueError, "i: 2147483648 is out of range for Avro int"),
        ({"i": True}, TypeError, "i: expected int, got bool"),
        ({"fx": b"abc"}, ValueError, "fx: fixed test.Two takes exactly 2 bytes, got 3"),
        ({"flag": 1}, TypeError, "flag: expected boolean, got int"),
        ({"opt": 1.5}, TypeError, "opt: a float matches no branch of the union"),
    ]
    for change, error, message in cases:
        with pytest.raises(error, match=message.replace("[", r"\[")):
            encoder.encode({**good, **change})


@needs_native
def test_codec_encode_uses_the_extension_and_keeps_its_error_contract() -> None:
    codec = AvroCodec(cast(Any, StubRegistry()), "t-value", load_schema("telemetry").text)
    assert codec.native
    record = telemetry()
    wire = codec.encode(record)
    assert wire[:5] == b"\x00\x00\x00\x00\x01"
    assert wire[5:] == fastavro_bytes(codec.parsed_schema, record)[5:]
    assert codec.decode(wire)["channels"] == record["channels"]
    record["channels"][0]["value"] = "x"
    with pytest.raises(EncodeError, match=r"record does not fit t-value: TypeError: channels\[0\].value"):
        codec.encode(record)


@needs_native
def test_a_codec_can_be_told_to_encode_with_fastavro() -> None:
    codec = AvroCodec(cast(Any, StubRegistry()), "t-value", load_schema("telemetry").text, native=False)
    assert not codec.native
    record = telemetry()
    assert codec.encode(record)[5:] == fastavro_bytes(codec.parsed_schema, record)[5:]
    record["event_time"] = True  # the compiled encoder refuses a bool for a long; fastavro writes 1
    assert codec.decode(codec.encode(record))["event_time"].timestamp() == 0.001


def test_without_the_extension_fastavro_encodes_and_a_warning_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(codec_module, "_native", None)
    monkeypatch.setattr(codec_module, "_warned_missing", False)
    registry = StubRegistry()
    with caplog.at_level(logging.WARNING, logger="twin.codec"):
        first = AvroCodec(cast(Any, registry), "a-value", load_schema("telemetry").text)
        second = AvroCodec(cast(Any, registry), "b-value", load_schema("part_produced").text)
    assert not first.native and not second.native
    assert len([r for r in caplog.records if "fastavro" in r.getMessage()]) == 1
    record = telemetry()
    assert first.encode(record)[5:] == fastavro_bytes(first.parsed_schema, record)[5:]
    del record["source"]
    with pytest.raises(EncodeError, match="record does not fit a-value"):
        first.encode(record)
