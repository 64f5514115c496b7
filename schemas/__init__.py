"""Avro contracts, one ``*.avsc`` per event type, their loader and the per-topic codecs.

>>> from schemas import load_schema
>>> load_schema("telemetry").name
'dev.factorytwin.events.MachineTelemetry'
"""

from __future__ import annotations

from schemas.codecs import Codecs, codec_for
from schemas.loader import SCHEMA_DIR, AvroSchema, load_schema, schema_names

__all__ = ["SCHEMA_DIR", "AvroSchema", "Codecs", "codec_for", "load_schema", "schema_names"]
