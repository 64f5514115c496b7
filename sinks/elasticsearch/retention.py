"""Retention without ILM: delete whole daily indices past ``retention_days``.

ILM and data streams need x-pack modules that not every cluster has (the local integ-test build
has none), and deleting a day's index is the cheapest delete there is. Also prunes alarms that have
been cleared for longer than the retention from ``<prefix>-current-alarms``.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from sinks.elasticsearch.mappings import current_alarms_index, daily_index_re, index_day

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger(__name__)

RETENTION_EVERY_S = 3600.0  # a day's index ages by the day: hourly is plenty
_DELETE_BATCH = 50  # index names per delete request (URL length)
_PRUNE_BATCH = 1000


def expired(names: list[str], prefix: str, retention_days: int, today: date) -> list[str]:
    """The daily indices of ``prefix`` whose whole day is older than ``retention_days``.

    Index ``D`` holds events of ``[D, D+1)``; it goes once ``D < today - retention_days``, so no
    event younger than the retention is ever deleted.
    """
    pattern = daily_index_re(prefix)
    oldest_kept = today - timedelta(days=retention_days)
    return sorted(n for n in names if pattern.match(n) and index_day(n) < oldest_kept)


def apply_retention(
    client: Elasticsearch, prefix: str, retention_days: int, *, now: datetime | None = None
) -> list[str]:
    """Delete expired daily indices and long-cleared current alarms; returns the indices deleted."""
    now = now or datetime.now(UTC)
    names = list(client.indices.get_alias(index=f"{prefix}-*", expand_wildcards="all").body)
    doomed = expired(names, prefix, retention_days, now.date())
    for start in range(0, len(doomed), _DELETE_BATCH):
        batch = doomed[start : start + _DELETE_BATCH]
        client.indices.delete(index=",".join(batch), ignore_unavailable=True)
    if current_alarms_index(prefix) in names:
        cutoff_ms = int((now - timedelta(days=retention_days)).timestamp() * 1000)
        _prune_current(client, current_alarms_index(prefix), cutoff_ms)
    return doomed


def _prune_current(client: Elasticsearch, index: str, cutoff_ms: int) -> None:
    """Drop alarms cleared before ``cutoff_ms`` (no delete_by_query: it is a module some lack)."""
    hits = client.search(
        index=index,
        query={
            "bool": {
                "filter": [
                    {"terms": {"status": ["CLEARED_UNACK", "CLEARED_ACK"]}},
                    {"range": {"event_time": {"lt": cutoff_ms}}},
                ]
            }
        },
        size=_PRUNE_BATCH,
        source=False,
        seq_no_primary_term=True,
    )["hits"]["hits"]
    if not hits:
        return
    # if_seq_no: a state written since the search (a late ack) is not deleted with the old one.
    operations = [
        {
            "delete": {
                "_index": index,
                "_id": h["_id"],
                "if_seq_no": h["_seq_no"],
                "if_primary_term": h["_primary_term"],
            }
        }
        for h in hits
    ]
    response = client.bulk(operations=operations, filter_path="errors,items.*.error.reason").body
    if response.get("errors"):  # a conflict means a newer state arrived: leave that one
        reasons = [i["delete"]["error"]["reason"] for i in response.get("items", []) if "delete" in i]
        log.info("kept %d current alarms that changed meanwhile: %s", len(reasons), reasons[:1])
    log.info("pruned long-cleared alarms from %s", index)
