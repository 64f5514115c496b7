"""Dead letters: a record that cannot be decoded or validated goes to ``<topic>.dlq`` unchanged,
with headers naming where it came from and why, so nothing is dropped silently."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from twin.clients import produce_blocking
from twin.errors import DecodeError, ProcessingError
from twin.topics import dlq_name

if TYPE_CHECKING:
    from confluent_kafka import Message, Producer

SOURCE_TOPIC = "twin.dlq.source.topic"
SOURCE_PARTITION = "twin.dlq.source.partition"
SOURCE_OFFSET = "twin.dlq.source.offset"
ERROR_REASON = "twin.dlq.error.reason"
ERROR_MESSAGE = "twin.dlq.error.message"
FAILED_AT = "twin.dlq.failed.at"
STEP = "twin.dlq.step"  # the processing step that failed (only on processing failures)
SINK = "twin.dlq.sink"  # the sink that dead-lettered a record the store refused


Headers = list[tuple[str, str | bytes | None]]


def dead_letter_headers(
    topic: str, partition: int, offset: int, error: BaseException, now_ms: int | None = None
) -> Headers:
    """Headers naming where a dead letter came from and why (reason: a ``DecodeError``'s reason,
    ``processing`` for a failed processing step, which also names the step, else the error type).

    >>> from twin.errors import ProcessingError
    >>> h = dict(dead_letter_headers("factory.telemetry", 2, 41, ProcessingError("boom", "alarms"), 0))
    >>> h["twin.dlq.error.reason"], h["twin.dlq.step"]
    (b'processing', b'alarms')
    """
    reason = error.reason if isinstance(error, DecodeError | ProcessingError) else type(error).__name__
    headers: Headers = [
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (ERROR_REASON, reason.encode()),
        (ERROR_MESSAGE, str(error)[:2000].encode()),
        (FAILED_AT, str(now_ms if now_ms is not None else int(time.time() * 1000)).encode()),
    ]
    if isinstance(error, ProcessingError) and error.step:
        headers.append((STEP, error.step.encode()))
    return headers


def headers_dict(headers: Headers | dict[str, str | bytes | None] | None) -> dict[str, str]:
    items = headers.items() if isinstance(headers, dict) else headers or []
    return {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else (v or "") for k, v in items}


class DeadLetterQueue:
    """Sends failed records to their topic's DLQ through an (idempotent, acks=all) producer."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self.sent = 0

    def send(self, message: Message, error: BaseException, on_delivery: Any = None) -> None:
        topic = message.topic() or "unknown"
        headers = dead_letter_headers(topic, message.partition() or 0, message.offset() or 0, error)
        self.send_raw(topic, message.key(), message.value(), headers, on_delivery)

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        on_delivery: Any = None,
    ) -> None:
        produce_blocking(
            self._producer, dlq_name(topic), value, key, headers=headers, on_delivery=on_delivery
        )
        self.sent += 1
