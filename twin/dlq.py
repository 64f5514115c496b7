"""Dead letters: a record that cannot be decoded or validated goes to ``<topic>.dlq`` unchanged,
with headers naming where it came from and why, so nothing is dropped silently."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from twin.codec import DecodeError

if TYPE_CHECKING:
    from confluent_kafka import Message, Producer

SOURCE_TOPIC = "twin.dlq.source.topic"
SOURCE_PARTITION = "twin.dlq.source.partition"
SOURCE_OFFSET = "twin.dlq.source.offset"
ERROR_REASON = "twin.dlq.error.reason"
ERROR_MESSAGE = "twin.dlq.error.message"
FAILED_AT = "twin.dlq.failed.at"


def dlq_name(topic: str) -> str:
    return f"{topic}.dlq"


Headers = list[tuple[str, str | bytes | None]]


def dead_letter_headers(
    topic: str, partition: int, offset: int, error: BaseException, now_ms: int | None = None
) -> Headers:
    reason = error.reason if isinstance(error, DecodeError) else type(error).__name__
    return [
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (ERROR_REASON, reason.encode()),
        (ERROR_MESSAGE, str(error)[:2000].encode()),
        (FAILED_AT, str(now_ms if now_ms is not None else int(time.time() * 1000)).encode()),
    ]


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
        while True:
            try:
                self._producer.produce(
                    dlq_name(topic), key=key, value=value, headers=headers, on_delivery=on_delivery
                )
                break
            except BufferError:
                self._producer.poll(0.1)  # back-pressure: wait for the queue, never drop
        self.sent += 1
