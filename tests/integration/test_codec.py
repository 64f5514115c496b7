"""The codec against the real registry: Confluent wire format both ways, typed errors, dead letters."""

from __future__ import annotations

import contextlib
import json
import struct
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localstack import Infra
from schemas import load_schema, schema_names
from tests.avro_strategies import normalise, records
from twin.clients import kafka_consumer, kafka_producer, schema_registry
from twin.codec import AvroCodec
from twin.dlq import ERROR_REASON, SOURCE_OFFSET, SOURCE_TOPIC, DeadLetterQueue, headers_dict
from twin.errors import DecodeError
from twin.settings import Settings


@pytest.fixture(scope="module")
def registry(stack: Infra, settings: Settings) -> Iterator[SchemaRegistryClient]:
    with schema_registry(settings) as client:
        yield client


@pytest.fixture(scope="module")
def codecs(registry: SchemaRegistryClient) -> dict[str, AvroCodec]:
    run = uuid.uuid4().hex[:8]
    return {
        key: AvroCodec(registry, f"test.codec.{run}.{key}-value", load_schema(key).text)
        for key in schema_names()
    }


def telemetry(machine: str = "cnc-1") -> dict[str, object]:
    event_id = str(uuid.uuid4())
    return {
        "event_id": event_id,
        "event_time": 1_764_000_000_000,
        "source": "test",
        "correlation_id": event_id,
        "line_id": "line-1",
        "machine_id": machine,
        "machine_type": "cnc",
        "channels": [{"name": "vibration_rms", "value": 2.5, "unit": "mm/s"}],
    }


@pytest.mark.parametrize("key", schema_names())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_round_trip_every_schema(codecs: dict[str, AvroCodec], key: str, data: st.DataObject) -> None:
    codec = codecs[key]
    record = data.draw(records(codec.parsed_schema))
    wire = codec.encode(record)
    assert wire[0] == 0 and struct.unpack(">I", wire[1:5])[0] == codec.schema_id
    assert normalise(codec.decode(wire)) == record


def test_confluent_deserializer_reads_ours_and_we_read_theirs(registry: SchemaRegistryClient) -> None:
    subject_topic = f"test.interop.{uuid.uuid4().hex[:8]}"
    ctx = SerializationContext(subject_topic, MessageField.VALUE)
    schema = load_schema("telemetry")
    codec = AvroCodec(registry, f"{subject_topic}-value", schema.text)
    record = telemetry()

    theirs = AvroDeserializer(registry)(codec.encode(record), ctx)
    assert normalise(theirs) == record

    their_bytes = AvroSerializer(registry, schema.text)(record, ctx)
    assert normalise(codec.decode(their_bytes)) == record


def test_reader_resolves_an_older_writer(registry: SchemaRegistryClient) -> None:
    subject = f"test.evolve.{uuid.uuid4().hex[:8]}-value"
    v1 = json.loads(load_schema("telemetry").text)
    v1["fields"] = [f for f in v1["fields"] if f["name"] != "machine_type"]
    old = AvroCodec(registry, subject, json.dumps(v1))
    new = AvroCodec(registry, subject, load_schema("telemetry").text)
    record = telemetry()
    del record["machine_type"]
    decoded = new.decode(old.encode(record))
    assert decoded["machine_type"] == ""  # the default of the newer schema fills the gap


def test_plain_wire_form_from_our_own_foreign_and_confluent_writers(registry: SchemaRegistryClient) -> None:
    topic = f"test.plain.{uuid.uuid4().hex[:8]}"
    text = load_schema("telemetry").text
    v1 = json.loads(text)
    v1["fields"] = [f for f in v1["fields"] if f["name"] != "machine_type"]
    old = AvroCodec(registry, f"{topic}-value", json.dumps(v1))
    plain = AvroCodec(registry, f"{topic}-value", text, logical_types=False)
    record = telemetry()

    own = plain.decode(plain.encode(record))
    assert own == record and type(own["event_time"]) is int and type(own["event_id"]) is str

    older = dict(record)
    del older["machine_type"]
    foreign = plain.decode(old.encode(older))
    assert foreign == {**older, "machine_type": ""}

    ctx = SerializationContext(topic, MessageField.VALUE)
    assert plain.decode(AvroSerializer(registry, text)(record, ctx)) == record


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "null"),
        (b"", "truncated"),
        (b"\x00\x00\x00", "truncated"),
        (b"\x01\x00\x00\x00\x01abc", "magic"),
        (b"\x00\x7f\xff\xff\xf0abc", "schema"),
        (b"\x00" + b"\x00" * 4096 * 1024 + b"x", "oversized"),
    ],
)
def test_bad_payloads_raise_one_typed_error(
    codecs: dict[str, AvroCodec], payload: bytes | None, reason: str
) -> None:
    with pytest.raises(DecodeError) as err:
        codecs["telemetry"].decode(payload)
    assert err.value.reason == reason


def test_truncated_and_trailing_bodies(codecs: dict[str, AvroCodec]) -> None:
    codec = codecs["telemetry"]
    wire = codec.encode(telemetry())
    with pytest.raises(DecodeError) as cut:
        codec.decode(wire[:-3])
    assert cut.value.reason == "body"
    with pytest.raises(DecodeError) as extra:
        codec.decode(wire + b"\x00")
    assert extra.value.reason == "trailing"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=200), framed=st.booleans())
def test_fuzz_only_decode_error_escapes(codecs: dict[str, AvroCodec], junk: bytes, framed: bool) -> None:
    codec = codecs["telemetry"]
    # Half the cases carry a valid header with our schema id, so the body parser itself is fuzzed.
    payload = (codec.encode(telemetry())[:5] + junk) if framed else junk
    with contextlib.suppress(DecodeError):
        codec.decode(payload)


def test_dead_letters_keep_the_bytes_and_say_why(
    settings: Settings, topic: str, codecs: dict[str, AvroCodec]
) -> None:
    from confluent_kafka.admin import NewTopic

    from twin.clients import kafka_admin

    admin = kafka_admin(settings)
    admin.create_topics([NewTopic(f"{topic}.dlq", num_partitions=1, replication_factor=1)])[
        f"{topic}.dlq"
    ].result(30)
    producer = kafka_producer(settings)
    producer.produce(topic, key=b"cnc-1", value=b"\x07not avro")
    producer.flush(10)

    consumer = kafka_consumer(settings, group_id=f"{topic}.worker")
    consumer.subscribe([topic])
    dlq = DeadLetterQueue(producer)
    msg = None
    for _ in range(60):
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            break
    assert msg is not None
    with pytest.raises(DecodeError) as err:
        codecs["telemetry"].decode(msg.value())
    dlq.send(msg, err.value)
    assert producer.flush(10) == 0
    consumer.close()

    reader = kafka_consumer(settings, group_id=f"{topic}.dlq.reader")
    reader.subscribe([f"{topic}.dlq"])
    dead = None
    for _ in range(60):
        dead = reader.poll(0.5)
        if dead is not None and dead.error() is None:
            break
    reader.close()
    assert dead is not None
    assert dead.value() == b"\x07not avro" and dead.key() == b"cnc-1"
    headers = headers_dict(dead.headers())
    assert headers[SOURCE_TOPIC] == topic
    assert headers[SOURCE_OFFSET] == str(msg.offset())
    assert headers[ERROR_REASON] == "magic"
