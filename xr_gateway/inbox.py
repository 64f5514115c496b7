"""The hand-over from the Kafka thread to the event loop, in fair slices.

The feed thread pushes decoded events; the loop takes at most ``slice_max`` per callback and then
yields, so the client senders woken by one slice run before the next slice is fanned out. A burst
of alarms is therefore spread over several turns of the loop instead of landing in every client's
queue at once (which would overflow the queues of clients that are not slow at all). When the loop
falls behind, ``push`` blocks the feed thread: Kafka holds the backlog, not our memory.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

Event = tuple[str, dict[str, Any]]


class Inbox:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handle: Callable[[list[Event]], None],
        *,
        slice_max: int,
        max_pending: int = 50_000,
    ) -> None:
        self.loop = loop
        self.handle = handle
        self.slice_max = max(1, slice_max)
        self.max_pending = max_pending
        self._items: deque[Event] = deque()
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._scheduled = False
        self.closed = False

    def push(self, events: list[Event]) -> None:
        """From the feed thread; waits while the loop is ``max_pending`` events behind."""
        with self._space:
            while len(self._items) >= self.max_pending and not self.closed:
                self._space.wait(0.1)
            if self.closed:
                return
            self._items.extend(events)
            if not self._scheduled:
                self._scheduled = True
                self.loop.call_soon_threadsafe(self._pump)

    def close(self) -> None:
        with self._space:
            self.closed = True
            self._space.notify_all()

    def _pump(self) -> None:
        with self._space:
            n = min(self.slice_max, len(self._items))
            batch = [self._items.popleft() for _ in range(n)]
            self._space.notify_all()
        self.handle(batch)
        with self._lock:
            if self._items and not self.closed:
                # Behind the sender wake-ups the slice just scheduled: they drain first.
                self.loop.call_soon(self._pump)
            else:
                self._scheduled = False
