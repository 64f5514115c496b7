"""Avro in the Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro body.

Any Confluent-compatible consumer (confluent-kafka's AvroDeserializer, kcat with a registry, Kafka
Connect) reads what ``AvroCodec.encode`` writes, and ``decode`` reads what they write. The schema
is parsed once; schema ids are looked up once and cached. Anything that cannot be decoded raises
``DecodeError`` (and only that), so pipelines can send it to the dead-letter topic.

>>> codec = AvroCodec(registry, "factory.telemetry-value", load_schema("telemetry").text)  # doctest: +SKIP
>>> codec.decode(codec.encode(record)) == record  # doctest: +SKIP
True
"""

from __future__ import annotations

import io
import json
import struct
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import fastavro

from twin.errors import TwinError

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size
DEFAULT_MAX_BYTES = 4 * 1024 * 1024  # Kafka's message.max.bytes on our broker


class DecodeError(TwinError):
    """Bytes that are not a valid record: the reason goes into the dead-letter headers."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class EncodeError(TwinError):
    """A record that does not fit its schema."""


class RegistryUnavailableError(TwinError):
    """The registry could not be asked (an outage, not bad input): retry, never dead-letter."""


class AvroCodec:
    """Encode and decode one topic's values."""

    def __init__(
        self,
        registry: SchemaRegistryClient,
        subject: str,
        schema_text: str,
        *,
        register: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        self.subject = subject
        self.max_bytes = max_bytes
        self._registry = registry
        self._parsed = fastavro.parse_schema(json.loads(schema_text))
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
        self._writers: dict[int, Any] = {self.schema_id: self._parsed}
        self._unknown: OrderedDict[int, None] = OrderedDict()  # ids the registry does not know

    @property
    def parsed_schema(self) -> Any:
        return self._parsed

    def encode(self, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self._prefix)
        try:
            fastavro.schemaless_writer(buf, self._parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            msg = f"record does not fit {self.subject}: {type(exc).__name__}: {exc}"
            raise EncodeError(msg) from exc
        return buf.getvalue()

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
            reader = None if writer is self._parsed else self._parsed
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
            parsed = fastavro.parse_schema(json.loads(schema.schema_str or ""))
        except Exception as exc:
            raise DecodeError("schema", f"schema id {schema_id} does not parse: {exc}") from exc
        self._writers[schema_id] = parsed
        return parsed
