"""Operators' ACK/CLEAR commands to ``twin.alarm-commands``.

The gateway only publishes the command; the processors own the alarm state and apply it, and the
alarm's new state comes back to every client through ``twin.alarms``. A command is reported accepted
once Kafka has acknowledged it (``acks=all``), not when it is merely queued.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from typing import Any

from schemas import codec_for
from twin.clients import kafka_producer, schema_registry
from twin.codec import AvroCodec
from twin.errors import CommandError
from twin.settings import Settings
from twin.topics import ALARM_COMMANDS, topic

log = logging.getLogger(__name__)

COMMANDS = ("ACK", "CLEAR")


class CommandPublisher:
    def __init__(self, settings: Settings, topic_prefix: str, *, source: str = "xr-gateway") -> None:
        self.entry = topic(ALARM_COMMANDS, topic_prefix)
        self.topic = self.entry.name
        self.source = source
        self._settings = settings
        self._producer: Any = None
        self._codec: AvroCodec | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # Encoding needs only the schema id, fetched here once; the registry client is not kept.
        with schema_registry(self._settings) as registry:
            self._codec = codec_for(registry, self.entry)
        self._producer = kafka_producer(self._settings)
        # Delivery callbacks run inside poll(): a small thread keeps them flowing.
        self._thread = threading.Thread(target=self._poll, name="gateway-commands", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._producer is not None:
            self._producer.flush(timeout)

    async def submit(
        self,
        *,
        alarm_id: str,
        machine_id: str,
        command: str,
        user: str,
        correlation_id: str,
        comment: str | None = None,
    ) -> str:
        """Publish one command; returns its event id once Kafka has it, else CommandError."""
        if self._producer is None or self._codec is None:
            msg = "the command publisher is not running"
            raise CommandError(msg)
        event_id = str(uuid.uuid4())  # a root event: two clicks are two commands (the second no-ops)
        record = {
            "event_id": event_id,
            "event_time": int(time.time() * 1000),
            "source": self.source,
            "correlation_id": correlation_id,
            "alarm_id": alarm_id,
            "machine_id": machine_id,
            "command": command,
            "user": user,
            "comment": comment,
        }
        value = self._codec.encode(record)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def delivered(err: Any, _msg: Any) -> None:  # called in the poll thread
            def settle() -> None:
                if done.done():
                    return
                if err is None:
                    done.set_result(None)
                else:
                    done.set_exception(CommandError(f"Kafka refused the command: {err}"))

            loop.call_soon_threadsafe(settle)

        # Not produce_blocking: an operator's click must not wait behind a full queue; it fails at
        # once and they click again (the queue holds 100k messages: it is full only when Kafka is not
        # taking any).
        try:
            self._producer.produce(self.topic, key=machine_id.encode(), value=value, on_delivery=delivered)
        except BufferError as exc:
            msg = "the command queue is full; try again"
            raise CommandError(msg) from exc
        await asyncio.wait_for(done, timeout=30)
        return event_id
