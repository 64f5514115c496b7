"""The discrete-event calendar: callbacks ordered by time, ties broken by insertion order."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any], None]


class Agenda:
    """A min-heap of ``(time_ms, late, seq, handler, arg)``. ``seq`` keeps equal times in FIFO order,
    which is what makes a run reproducible; ``late`` entries (sensor sampling) run after everything
    else at the same instant, so a reading at ``t`` always reflects what happened at ``t``."""

    __slots__ = ("_heap", "_seq", "now")

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms
        self._heap: list[tuple[int, bool, int, Handler, Any]] = []
        self._seq = 0

    def push(self, time_ms: int, handler: Handler, arg: Any = None, *, late: bool = False) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (time_ms, late, self._seq, handler, arg))

    def next_time(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[Handler, Any]:
        """Remove the earliest entry and move ``now`` to its time."""
        time_ms, _, _, handler, arg = heapq.heappop(self._heap)
        self.now = time_ms
        return handler, arg
