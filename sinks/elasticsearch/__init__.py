"""Elasticsearch sink: alarms, anomalies and line events in daily indices, and their search.

See ``docs/search.md`` for the indices, mappings, retention and error handling.
"""

from __future__ import annotations

from sinks.elasticsearch.mappings import CURRENT_ALARMS, KINDS, templates
from sinks.elasticsearch.retention import apply_retention
from sinks.elasticsearch.search import SEARCHABLE, search
from sinks.elasticsearch.sink import ElasticsearchSink

__all__ = [
    "CURRENT_ALARMS",
    "KINDS",
    "SEARCHABLE",
    "ElasticsearchSink",
    "apply_retention",
    "search",
    "templates",
]
