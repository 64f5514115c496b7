"""Avro in the Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro body.

Any Confluent-compatible consumer (confluent-kafka's AvroDeserializer, kcat with a registry, Kafka
Connect) reads what ``AvroCodec.encode`` writes, and ``decode`` reads what they write. The schema
is parsed once; schema ids are looked up once and cached. Anything that cannot be decoded raises
``DecodeError`` (and only that), so pipelines can send it to the dead-letter topic.

Encoding runs in ``twin._avroenc`` (C, built by ``make setup`` from ``native/avroenc.c``): the
schema is compiled once into a plan and records are written straight from their dicts, byte for
byte what fastavro writes. Without the extension (no compiler at install time), or with a fastavro
release other than ``FASTAVRO_VERSION`` (the plan builder reads fastavro internals), fastavro does
the encoding, several times slower, and a warning says so once. Decoding always uses fastavro.
``make asan`` and ``make native-matrix`` are the extension's own checks (see native/).

>>> codec = AvroCodec(registry, "factory.telemetry-value", load_schema("telemetry").text)  # doctest: +SKIP
>>> codec.decode(codec.encode(record)) == record  # doctest: +SKIP
True
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import fastavro
from fastavro.logical_writers import LOGICAL_WRITERS

from twin.errors import DecodeError, EncodeError, RegistryUnavailableError

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

log = logging.getLogger(__name__)

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size
DEFAULT_MAX_BYTES = 4 * 1024 * 1024  # Kafka's message.max.bytes on our broker
# What an encoder raises for a record that does not fit its schema (native and fastavro alike).
ENCODE_FAILURES = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
NATIVE_PLAN_VERSION = 1  # the plan format native/avroenc.c reads; a stale build is not used
# native_plan reads fastavro internals (LOGICAL_WRITERS, the keys of a parsed schema) and the tests
# prove byte-identical output against this release only: pyproject.toml pins it exactly, and with
# any other version installed fastavro encodes (and the unit tests fail, naming both versions).
FASTAVRO_VERSION = "1.13.1"


class NativeEncoder(Protocol):
    """``twin._avroenc.Encoder``: ``encode`` returns ``prefix`` + the Avro body, or raises
    TypeError/ValueError naming the offending field."""

    @property
    def prefix(self) -> bytes: ...

    def encode(self, record: Any, /) -> bytes: ...


def _load_native() -> tuple[Any, str]:
    if fastavro.__version__ != FASTAVRO_VERSION:
        return None, (
            f"fastavro {fastavro.__version__} is installed, but twin._avroenc is only checked against "
            f"fastavro {FASTAVRO_VERSION} (the version pyproject.toml pins)"
        )
    try:
        module = importlib.import_module("twin._avroenc")
    except ImportError as exc:
        return None, f"twin._avroenc is not built ({exc})"
    if getattr(module, "PLAN_VERSION", None) != NATIVE_PLAN_VERSION:
        return None, f"twin._avroenc is stale (plan version {getattr(module, 'PLAN_VERSION', None)})"
    return module, ""


_native, NATIVE_UNAVAILABLE = _load_native()
NATIVE_AVAILABLE = _native is not None
_warned_missing = False


def native_encoder(parsed_schema: Any, prefix: bytes = b"") -> NativeEncoder | None:
    """The compiled encoder for a fastavro-parsed schema, or None (no extension, or a schema it
    cannot take: then fastavro encodes). Logs a warning once when the extension is missing."""
    global _warned_missing  # noqa: PLW0603 - one warning per process, not per topic
    if _native is None:
        if not _warned_missing:
            _warned_missing = True
            log.warning(
                "%s: encoding Avro with fastavro, several times slower (run `make setup`)", NATIVE_UNAVAILABLE
            )
        return None
    try:
        encoder: NativeEncoder = _native.Encoder(native_plan(parsed_schema), prefix)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning(
            "schema %s cannot be compiled for native encoding (%s): using fastavro",
            _schema_name(parsed_schema),
            exc,
        )
        return None
    return encoder


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def native_plan(parsed_schema: Any) -> list[tuple[Any, ...]]:
    """The schema as the flat node list ``twin._avroenc.Encoder`` takes (format in
    native/avroenc.c); node 0 is the root, children are list indices, so recursion is free."""
    named_schemas = dict(parsed_schema.get("__named_schemas", {})) if isinstance(parsed_schema, dict) else {}
    nodes: list[tuple[Any, ...]] = []
    named: dict[str, int] = {}

    def reserve() -> int:
        nodes.append(())
        return len(nodes) - 1

    def add(schema: Any) -> int:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                at = reserve()
                nodes[at] = (schema,)
                return at
            if schema in named:
                return named[schema]
            msg = f"unknown Avro type {schema!r}"
            raise ValueError(msg)
        if isinstance(schema, list):
            at = reserve()
            nodes[at] = ("union", tuple(add(branch) for branch in schema))
            return at
        kind = schema["type"]
        logical = schema.get("logicalType")
        prepare = LOGICAL_WRITERS.get(f"{kind}-{logical}") if logical and isinstance(kind, str) else None
        if prepare is not None:
            # fastavro's own converter, so datetimes/UUIDs/decimals encode exactly as fastavro does;
            # the wire type itself (an int, a str) skips the call.
            at = reserve()
            base = add({k: v for k, v in schema.items() if k != "logicalType"})
            fast = "int" if kind in ("int", "long") else "str" if kind == "string" else ""
            nodes[at] = ("logical", base, prepare, schema, fast)
            return at
        if isinstance(kind, (dict, list)) or kind in _PRIMITIVES:
            return add(kind)
        at = reserve()
        if kind in ("record", "error"):
            named[schema["name"]] = at
            fields = tuple(
                (f["name"], add(f["type"]), _missing_bytes(f, named_schemas)) for f in schema["fields"]
            )
            nodes[at] = ("record", schema["name"], fields)
        elif kind == "enum":
            named[schema["name"]] = at
            nodes[at] = ("enum", schema["name"], tuple(schema["symbols"]))
        elif kind == "fixed":
            named[schema["name"]] = at
            nodes[at] = ("fixed", schema["name"], int(schema["size"]))
        elif kind == "array":
            nodes[at] = ("array", add(schema["items"]))
        elif kind == "map":
            nodes[at] = ("map", add(schema["values"]))
        else:
            msg = f"unsupported Avro type {kind!r}"
            raise ValueError(msg)
        return at

    add(parsed_schema)
    return nodes


def _missing_bytes(field: dict[str, Any], named_schemas: dict[str, Any]) -> bytes | None:
    """What fastavro writes for an absent field: its default, or null for a nullable field with no
    default; None when fastavro raises (the field is required)."""
    field_type = field["type"]
    if "default" not in field and "null" not in field_type:
        return None
    # Already in parsed form, so fastavro takes the wrapper as is and resolves named types from it.
    wrapper = {
        "type": "record",
        "name": "twin.codec.MissingField",
        "fields": [{"name": "value", "type": field_type}],
        "__fastavro_parsed": True,
        "__named_schemas": named_schemas,
    }
    buf = io.BytesIO()
    try:
        fastavro.schemaless_writer(buf, wrapper, {"value": field.get("default")})
    except ENCODE_FAILURES:
        return None
    return buf.getvalue()


def _schema_name(schema: Any) -> str:
    return str(schema.get("name", schema.get("type"))) if isinstance(schema, dict) else str(schema)


def without_logical_types(schema: Any) -> Any:
    """The JSON schema with every ``logicalType`` dropped: the same binary layout, read as plain
    ints/strings/bytes. Only type positions are touched (defaults and docs are data)."""
    if isinstance(schema, list):
        return [without_logical_types(branch) for branch in schema]
    if not isinstance(schema, dict):
        return schema
    plain = {k: v for k, v in schema.items() if k != "logicalType"}
    for key in ("type", "items", "values"):
        if key in plain and isinstance(plain[key], (dict, list)):
            plain[key] = without_logical_types(plain[key])
    if isinstance(plain.get("fields"), list):
        plain["fields"] = [{**f, "type": without_logical_types(f["type"])} for f in plain["fields"]]
    return plain


class AvroCodec:
    """Encode and decode one topic's values.

    ``logical_types=False`` makes ``decode`` return the wire form (timestamp-millis as int
    milliseconds, uuid as str, decimals as bytes), for our own and foreign writer schemas alike;
    stream processors that only compare or forward these values skip the conversions.
    ``native=False`` encodes with fastavro even where the compiled encoder is available, as an
    install without the extension does (to compare the two).
    """

    def __init__(
        self,
        registry: SchemaRegistryClient,
        subject: str,
        schema_text: str,
        *,
        register: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
        logical_types: bool = True,
        native: bool = True,
    ) -> None:
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        self.subject = subject
        self.max_bytes = max_bytes
        self._registry = registry
        self.logical_types = logical_types
        self._parsed = fastavro.parse_schema(json.loads(schema_text))
        self._reader = self._parsed if logical_types else self._parse(json.loads(schema_text))
        schema = Schema(schema_text, "AVRO")
        try:
            if register:
                self.schema_id = registry.register_schema(subject, schema)
            else:
                self.schema_id = registry.lookup_schema(subject, schema).schema_id or 0
        except SchemaRegistryError as exc:
            msg = f"registry refused schema for subject {subject!r}: {exc}"
            raise EncodeError(msg) from exc
        except Exception as exc:
            msg = f"schema registry unavailable while preparing {subject!r}: {exc}"
            raise RegistryUnavailableError(msg) from exc
        self._prefix = _HEADER.pack(MAGIC_BYTE, self.schema_id)
        self._native = native_encoder(self._parsed, self._prefix) if native else None
        self._encode: Callable[[Any], bytes] = (
            self._native.encode if self._native is not None else self._fastavro_encode
        )
        self._writers: dict[int, Any] = {self.schema_id: self._reader}
        self._unknown: OrderedDict[int, None] = OrderedDict()  # ids the registry does not know

    @property
    def parsed_schema(self) -> Any:
        return self._parsed

    @property
    def native(self) -> bool:
        """Whether ``encode`` runs in the compiled extension (False: fastavro)."""
        return self._native is not None

    def encode(self, record: dict[str, Any]) -> bytes:
        try:
            return self._encode(record)
        except ENCODE_FAILURES as exc:
            raise self.encode_error(exc) from exc

    @property
    def encode_unchecked(self) -> Callable[[Any], bytes]:
        """``encode`` without the EncodeError wrapping, for hot loops: it raises one of
        ``ENCODE_FAILURES``, which ``encode_error`` turns into the EncodeError ``encode`` raises."""
        return self._encode

    def encode_error(self, exc: Exception) -> EncodeError:
        return EncodeError(f"record does not fit {self.subject}: {type(exc).__name__}: {exc}")

    def _fastavro_encode(self, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self._prefix)
        fastavro.schemaless_writer(buf, self._parsed, record)
        return buf.getvalue()

    def _parse(self, schema: Any) -> Any:
        return fastavro.parse_schema(schema if self.logical_types else without_logical_types(schema))

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """The record in ``data``, resolved to this codec's schema (readers evolve with writers)."""
        if data is None:
            raise DecodeError("null", "value is null (a tombstone or an empty message)")
        size = len(data)
        if size > self.max_bytes:
            raise DecodeError("oversized", f"value of {size} bytes exceeds the limit of {self.max_bytes}")
        if size < HEADER_SIZE:
            raise DecodeError("truncated", f"value of {size} bytes is shorter than the 5-byte header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC_BYTE:
            raise DecodeError("magic", f"wrong magic byte {magic} (expected 0): not Confluent-framed Avro")
        writer = self._writer(schema_id)
        buf = io.BytesIO(data)
        buf.seek(HEADER_SIZE)
        try:
            reader = None if writer is self._reader else self._reader
            record = fastavro.schemaless_reader(buf, writer, reader)
        except Exception as exc:  # fastavro raises many types on garbage; the contract is one
            msg = f"undecodable Avro body for schema id {schema_id}: {type(exc).__name__}: {exc}"
            raise DecodeError("body", msg) from exc
        if buf.tell() != size:
            raise DecodeError("trailing", f"{size - buf.tell()} bytes left after the record")
        if not isinstance(record, dict):
            raise DecodeError("body", f"decoded a {type(record).__name__}, not a record")
        return record

    def _writer(self, schema_id: int) -> Any:
        cached = self._writers.get(schema_id)
        if cached is not None:
            return cached
        if schema_id in self._unknown:
            raise DecodeError("schema", f"unknown schema id {schema_id}")
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            schema = self._registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                self._unknown[schema_id] = None
                if len(self._unknown) > 1024:
                    self._unknown.popitem(last=False)
                raise DecodeError("schema", f"unknown schema id {schema_id}") from exc
            msg = f"schema registry error for id {schema_id}: {exc}"
            raise RegistryUnavailableError(msg) from exc
        except Exception as exc:
            msg = f"schema registry unavailable for id {schema_id}: {exc}"
            raise RegistryUnavailableError(msg) from exc
        if schema.schema_type not in (None, "AVRO"):
            raise DecodeError("schema", f"schema id {schema_id} is {schema.schema_type}, not Avro")
        try:
            parsed = self._parse(json.loads(schema.schema_str or ""))
        except Exception as exc:
            raise DecodeError("schema", f"schema id {schema_id} does not parse: {exc}") from exc
        self._writers[schema_id] = parsed
        return parsed
