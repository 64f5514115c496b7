"""Search alarms, anomalies and line events: plain words in, newest first out.

>>> hits = search(client, "pressure low", kinds=["alarms"], machine="press-2", limit=20)  # doctest: +SKIP

The query is ``simple_query_string`` (``lenient``, all terms required by default): it never fails
on user syntax, ``"quoted phrases"``, ``-exclusion``, ``a | b`` and ``prefix*`` work as expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sinks.elasticsearch.mappings import CURRENT_ALARMS, KINDS, check_prefix, current_alarms_index
from twin.errors import SearchError, one_line

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

SEARCHABLE: tuple[str, ...] = (*KINDS, CURRENT_ALARMS)
MAX_LIMIT = 10_000  # index.max_result_window
ACTIVE = ("ACTIVE_UNACK", "ACTIVE_ACK")
# Text first: a word in a message or reason outranks the same word in an id.
FIELDS = ("message^3", "reason^2", "*")


def search(
    client: Elasticsearch,
    query: str,
    *,
    index_prefix: str = "twin",
    kinds: Sequence[str] = KINDS,
    machine: str | None = None,
    line: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    active_only: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Matching documents, newest ``event_time`` first, as dicts: the document's own fields plus
    ``kind``, ``id``, ``index``, ``time`` (aware datetime, UTC), ``what`` and ``state`` (one-word
    summaries for a table). An empty query (or ``*``) matches everything the filters let through."""
    from elasticsearch import ApiError, TransportError

    prefix = check_prefix(index_prefix)
    unknown = [k for k in kinds if k not in SEARCHABLE]
    if unknown or not kinds:
        msg = f"unknown kind {unknown[0] if unknown else '(none)'}; choose from {', '.join(SEARCHABLE)}"
        raise SearchError(msg)
    if not 1 <= limit <= MAX_LIMIT:
        msg = f"limit must be between 1 and {MAX_LIMIT}, got {limit}"
        raise SearchError(msg)
    indices = [current_alarms_index(prefix) if k == CURRENT_ALARMS else f"{prefix}-{k}-*" for k in kinds]
    body = build_query(query, machine=machine, line=line, since=since, until=until, active=active_only)
    try:
        response = client.search(
            index=",".join(indices),
            query=body,
            sort=[{"event_time": {"order": "desc"}}, {"event_id": {"order": "asc"}}],
            size=limit,
            ignore_unavailable=True,
            allow_no_indices=True,
            track_total_hits=False,
        )
    except TransportError as exc:
        msg = f"Elasticsearch unreachable: {one_line(exc)}"
        raise SearchError(msg) from exc
    except ApiError as exc:
        msg = f"Elasticsearch refused the search: {exc.meta.status} {exc.message}"
        raise SearchError(msg) from exc
    return [hit_row(h, prefix) for h in response["hits"]["hits"]]


def build_query(
    query: str,
    *,
    machine: str | None = None,
    line: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    active: bool = False,
) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    if machine:
        filters.append({"term": {"machine_id": machine}})
    if line:
        filters.append({"term": {"line_id": line}})
    if since or until:
        bounds: dict[str, int] = {}
        if since:
            bounds["gte"] = epoch_ms(since)
        if until:
            bounds["lt"] = epoch_ms(until)
        filters.append({"range": {"event_time": bounds}})
    if active:
        filters.append({"terms": {"status": list(ACTIVE)}})
    text = query.strip()
    must: list[dict[str, Any]] = []
    if text and text != "*":
        must.append(
            {
                "simple_query_string": {
                    "query": text,
                    "fields": list(FIELDS),
                    "default_operator": "and",
                    "lenient": True,
                }
            }
        )
    return {"bool": {"must": must or [{"match_all": {}}], "filter": filters}}


def epoch_ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def hit_row(hit: dict[str, Any], prefix: str) -> dict[str, Any]:
    source: dict[str, Any] = hit.get("_source") or {}
    index = str(hit.get("_index", ""))
    kind = index_kind(index, prefix)
    row = {**source, "kind": kind, "id": hit.get("_id"), "index": index}
    ms = source.get("event_time")
    row["time"] = datetime.fromtimestamp(ms / 1000, UTC) if isinstance(ms, int | float) else ms
    row["what"], row["state"] = _summary(kind, source)
    return row


def index_kind(index: str, prefix: str) -> str:
    if index == current_alarms_index(prefix):
        return CURRENT_ALARMS
    rest = index[len(prefix) + 1 :]
    return rest.rsplit("-", 1)[0] if "-" in rest else rest


def _summary(kind: str, s: dict[str, Any]) -> tuple[Any, Any]:
    if kind in ("alarms", CURRENT_ALARMS):
        return s.get("alarm_type"), f"{s.get('severity')} {s.get('status')}"
    if kind == "anomalies":
        score = s.get("score")
        return s.get("detector"), f"score {score:.3g}" if isinstance(score, float | int) else score
    event_type = s.get("event_type")
    if event_type == "state_change":
        return event_type, s.get("state")
    if event_type == "schedule_request":
        return event_type, s.get("trigger")
    return event_type, s.get("status")
