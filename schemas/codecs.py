"""One codec per topic: the catalog entry (twin.topics) joined with its schema file and the
Confluent-wire codec (twin.codec).

This lives here, not in the kernel, because the kernel imports no project package and the schema
files are this package's. Every producer, pipeline, sink and the gateway gets its codecs from here:

>>> codecs = Codecs(registry, prefix="t1.")  # doctest: +SKIP
>>> codecs("t1.twin.kpis").subject  # doctest: +SKIP
't1.twin.kpis-value'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.loader import load_schema
from twin.codec import AvroCodec
from twin.errors import ConfigError
from twin.topics import Topic, by_real_name

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient


def codec_for(
    registry: SchemaRegistryClient,
    topic: Topic,
    *,
    register: bool = True,
    logical_types: bool = True,
    native: bool = True,
) -> AvroCodec:
    """The codec of ``topic``'s values (subject ``topic.value_subject``).

    ``register=False`` looks the schema up instead of registering it (readers that must not create
    subjects); ``logical_types=False`` decodes to the plain wire form (see ``AvroCodec``);
    ``native=False`` encodes with fastavro instead of the compiled encoder.
    """
    if not topic.value_schema:
        msg = f"topic {topic.name!r} carries raw bytes (no value schema)"
        raise ConfigError(msg)
    schema = load_schema(topic.value_schema)
    return AvroCodec(
        registry,
        topic.value_subject,
        schema.text,
        register=register,
        logical_types=logical_types,
        native=native,
    )


class Codecs:
    """``codecs(real_topic_name)``: each topic's codec, made on first use and kept.

    ``prefix`` is the topic namespace (real name = prefix + catalog name).
    """

    def __init__(
        self,
        registry: SchemaRegistryClient,
        *,
        prefix: str = "",
        register: bool = True,
        logical_types: bool = True,
        native: bool = True,
    ) -> None:
        self.registry = registry
        self.prefix = prefix
        self._options = {"register": register, "logical_types": logical_types, "native": native}
        self._codecs: dict[str, AvroCodec] = {}

    def __call__(self, real_name: str) -> AvroCodec:
        codec = self._codecs.get(real_name)
        if codec is None:
            topic = by_real_name(real_name, self.prefix)
            codec = self._codecs[real_name] = codec_for(self.registry, topic, **self._options)
        return codec
