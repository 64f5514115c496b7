"""``ElasticsearchSink``: alarms, anomalies and line events into daily indices, idempotently.

>>> sink = ElasticsearchSink(Settings())               # doctest: +SKIP
>>> sink.setup()            # templates, then retention  # doctest: +SKIP
>>> sink.add(record); result = sink.flush()            # doctest: +SKIP

Every document's ``_id`` is its ``event_id`` (``index`` op), so a redelivered record replaces
itself. Alarm events also update ``<prefix>-current-alarms`` (``_id`` = alarm_id) with external
versioning (from the lifecycle version, see ``documents.alarm_version``; ``external_gte``): an older
event arriving late gets a 409, which is the expected no-op, so the index ends in the latest state
in any delivery order, whatever clocks stamped the events.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from sinks.base import FlushResult, Rejected, SinkRecord
from sinks.elasticsearch.bulk import Outcome, classify, error_reason
from sinks.elasticsearch.documents import BUILDERS, TOPICS, alarm_version, event_day, event_id
from sinks.elasticsearch.mappings import (
    CURRENT_ALARMS,
    KINDS,
    PROPERTIES,
    check_prefix,
    current_alarms_index,
    kind_pattern,
    templates,
)
from sinks.elasticsearch.retention import RETENTION_EVERY_S, apply_retention
from twin.errors import BackpressureError, DocumentError, SinkError, one_line

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from twin.settings import Settings

log = logging.getLogger(__name__)

CHUNK_DOCS = 500  # bulk actions per request (elasticsearch.helpers' default chunk_size)
# Only what classification needs: the response parses in a fraction of the time of the full one.
_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason,items.*.error.caused_by"


@dataclass(slots=True)
class _Entry:
    """A buffered record and its bulk lines (action, source, ...), or why it has none."""

    record: SinkRecord
    ops: list[dict[str, Any]]
    versioned: bool  # the second op pair is the externally versioned current-alarm update
    error: str = ""
    body: bytes = b""  # the ops as NDJSON lines, encoded once when the record is added


class ElasticsearchSink:
    """Writes alarms, anomalies and line events to Elasticsearch. See ``docs/search.md``."""

    name = "elasticsearch"
    topics: tuple[str, ...] = TOPICS

    def __init__(
        self,
        settings: Settings,
        *,
        index_prefix: str | None = None,
        client: Elasticsearch | None = None,
        chunk_docs: int = CHUNK_DOCS,
    ) -> None:
        cfg = settings.elasticsearch
        self.prefix = check_prefix(index_prefix or cfg.index_prefix)
        self.retention_days = cfg.retention_days
        self.chunk_docs = chunk_docs
        self._client = client or _client(settings)
        self._current = current_alarms_index(self.prefix)
        self._index_of = {kind: f"{self.prefix}-{kind}-" for kind in KINDS}
        self._buffer: list[_Entry] = []
        # Results of a flush that ended in BackpressureError after writing part of the batch: reported
        # by the flush that finally succeeds, so the runner counts and dead-letters them once.
        self._carry_written = 0
        self._carry_rejected: list[Rejected] = []
        self._retries = 0
        self._next_retention = 0.0

    # -- the Sink contract -----------------------------------------------------------------------
    def setup(self) -> None:
        """Install or update the index templates, extend today's mappings, apply retention."""
        from elasticsearch import ApiError, TransportError

        try:
            for name, body in templates(self.prefix).items():
                self._client.indices.put_index_template(name=name, **body)
            self._extend_mappings()
        except TransportError as exc:
            raise BackpressureError(f"Elasticsearch unreachable: {one_line(exc)}", 0.0) from exc
        except ApiError as exc:
            if exc.meta.status == 429 or exc.meta.status >= 500:
                raise BackpressureError(f"Elasticsearch busy: {_api_reason(exc)}", _retry_after(exc)) from exc
            msg = f"cannot install Elasticsearch templates for prefix {self.prefix!r}: {_api_reason(exc)}"
            raise SinkError(msg) from exc
        self._run_retention(force=True)

    def _extend_mappings(self) -> None:
        """Templates shape new indices only: give existing ones (today's) new, additive fields now."""
        from elasticsearch import ApiError

        for kind, properties in PROPERTIES.items():
            target = self._current if kind == CURRENT_ALARMS else kind_pattern(self.prefix, kind)
            try:
                self._client.indices.put_mapping(
                    index=target, properties=properties, allow_no_indices=True, ignore_unavailable=True
                )
            except ApiError as exc:
                if exc.meta.status == 429 or exc.meta.status >= 500:
                    raise
                # An index made some other way (no template) keeps its mapping until it ages out;
                # documents it refuses are dead-lettered with the reason. Not a reason to stop.
                log.warning(
                    "elasticsearch sink: cannot extend the mapping of %s: %s", target, _api_reason(exc)
                )

    def add(self, record: SinkRecord) -> None:
        self._buffer.append(self._entry(record))

    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> FlushResult:
        """One bulk pass over the buffer, in chunks; every item is read.

        Raises BackpressureError (keeping what was not written) when Elasticsearch is unreachable or
        answers 429/5xx, for the whole request or for any item.
        """
        self._run_retention(force=False)
        entries, self._buffer = self._buffer, []
        keep: list[_Entry] = []
        hint = 0.0
        problem = ""
        chunks = self._chunks(entries)
        for i, chunk in enumerate(chunks):
            try:
                keep.extend(self._write(chunk))
            except BackpressureError as exc:
                keep.extend(e for e in chunk if not e.error)  # local rejects are already reported
                keep.extend(e for later in chunks[i + 1 :] for e in later)
                hint, problem = exc.retry_after_s, exc.reason
                break
        if keep:
            self._buffer = keep + self._buffer
            self._retries += 1
            reason = problem or f"{len(keep)} documents refused for now (429/5xx)"
            raise BackpressureError(reason, hint)
        result = FlushResult(self._carry_written, self._retries, self._carry_rejected)
        self._carry_written, self._carry_rejected, self._retries = 0, [], 0
        return result

    def close(self) -> None:
        self._client.close()

    # -- internals -------------------------------------------------------------------------------
    def _entry(self, record: SinkRecord) -> _Entry:
        try:
            kind, build = BUILDERS[record.topic]
            value = record.value
            index = self._index_of[kind] + event_day(value)
            doc_id = event_id(value)
            doc = build(value)
        except KeyError:
            return _Entry(record, [], False, f"topic {record.topic!r} is not indexed by this sink")
        except (DocumentError, TypeError, ValueError, AttributeError) as exc:
            return _Entry(record, [], False, f"cannot build a document: {exc}")
        ops: list[dict[str, Any]] = [{"index": {"_index": index, "_id": doc_id}}, doc]
        if kind != "alarms":
            return _encoded(_Entry(record, ops, False))
        try:
            version = alarm_version(value)
            alarm_id = str(value["alarm_id"])
        except (KeyError, TypeError, ValueError, DocumentError) as exc:
            return _Entry(record, [], False, f"cannot build the current-alarm document: {exc}")
        current = {
            "index": {
                "_index": self._current,
                "_id": alarm_id,
                "version": version,
                "version_type": "external_gte",
            }
        }
        ops += (current, doc)
        return _encoded(_Entry(record, ops, True))

    def _chunks(self, entries: list[_Entry]) -> list[list[_Entry]]:
        """Consecutive runs of at most ``chunk_docs`` bulk actions (a record's actions stay together)."""
        chunks: list[list[_Entry]] = []
        chunk: list[_Entry] = []
        actions = 0
        for e in entries:
            n = len(e.ops) // 2
            if chunk and actions + n > self.chunk_docs:
                chunks.append(chunk)
                chunk, actions = [], 0
            chunk.append(e)
            actions += n
        if chunk:
            chunks.append(chunk)
        return chunks

    def _write(self, chunk: list[_Entry]) -> list[_Entry]:
        """Send one chunk; returns the entries to retry. Raises BackpressureError for the whole chunk."""
        from elasticsearch import ApiError, TransportError

        sendable = [e for e in chunk if not e.error]
        for e in chunk:
            if e.error:
                self._carry_rejected.append(Rejected(e.record, e.error))
        if not sendable:
            return []
        # Pre-encoded NDJSON: the client forwards bytes as they are (its own json.dumps per line
        # cost more than the rest of the sink's client work together, profiled).
        operations = b"".join(e.body for e in sendable)
        try:
            response = self._client.bulk(
                operations=operations,  # type: ignore[arg-type]  # bytes: sent as they are
                filter_path=_FILTER,
                include_source_on_error=False,
            )
        except TransportError as exc:
            raise BackpressureError(f"Elasticsearch unreachable: {one_line(exc)}", 0.0) from exc
        except ApiError as exc:
            status = exc.meta.status
            if status == 429 or status >= 500:
                raise BackpressureError(f"Elasticsearch busy: {_api_reason(exc)}", _retry_after(exc)) from exc
            if status == 413:
                msg = "bulk request too large for Elasticsearch: lower TWIN_SINKS__BATCH_MAX"
                raise SinkError(msg) from exc
            if status in (401, 403):
                raise BackpressureError(f"Elasticsearch refused the sink: {_api_reason(exc)}", 0.0) from exc
            msg = f"Elasticsearch refused a bulk request: {_api_reason(exc)}"
            raise SinkError(msg) from exc
        body = response.body
        if not body.get("errors"):
            self._carry_written += len(sendable)
            return []
        return self._classify(sendable, body.get("items") or [])

    def _classify(self, sent: list[_Entry], items: list[dict[str, Any]]) -> list[_Entry]:
        if len(items) != sum(len(e.ops) // 2 for e in sent):
            # Never guess which document an item belongs to: resend all (writes are idempotent).
            raise BackpressureError(f"bulk response has {len(items)} items for {len(sent)} records", 0.0)
        retry: list[_Entry] = []
        at = 0
        for e in sent:
            outcomes = [classify(items[at], versioned=False)]
            if e.versioned:
                outcomes.append(classify(items[at + 1], versioned=True))
            at += len(e.ops) // 2
            rejected = [reason for outcome, reason in outcomes if outcome is Outcome.REJECT]
            if rejected:
                self._carry_rejected.append(Rejected(e.record, rejected[0]))
            elif any(outcome is Outcome.RETRY for outcome, _ in outcomes):
                retry.append(e)
            else:
                self._carry_written += 1
        if retry:
            log.debug("%d of %d documents to retry", len(retry), len(sent))
        return retry

    def _run_retention(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now < self._next_retention:
            return
        self._next_retention = now + RETENTION_EVERY_S
        try:
            deleted = apply_retention(self._client, self.prefix, self.retention_days)
        except Exception as exc:  # retention is housekeeping: it never stops the writes
            log.warning("elasticsearch sink: retention failed, will retry in an hour: %s", one_line(exc))
            return
        if deleted:
            log.info("elasticsearch sink: retention deleted %s", ", ".join(deleted))


def _encoded(entry: _Entry) -> _Entry:
    """``entry`` with its NDJSON lines; a value JSON cannot carry (bytes, a set) rejects the record."""
    try:
        entry.body = b"".join(orjson.dumps(op) + b"\n" for op in entry.ops)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        return _Entry(entry.record, [], False, f"not JSON-serializable: {exc}")
    return entry


def _client(settings: Settings) -> Elasticsearch:
    from twin.clients import elasticsearch

    # No retries inside the client: the runner owns back-off, and an outage must surface in one
    # request timeout rather than after several.
    return elasticsearch(
        settings,
        request_timeout=settings.elasticsearch.request_timeout_s,
        max_retries=0,
        retry_on_timeout=False,
    )


def _api_reason(exc: Any) -> str:
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    return error_reason(error, exc.meta.status) if error else f"status {exc.meta.status}: {one_line(exc)}"


def _retry_after(exc: Any) -> float:
    value = exc.meta.headers.get("retry-after") if exc.meta.headers else None
    try:
        return max(0.0, float(value)) if value is not None else 0.0
    except ValueError:
        return 0.0
