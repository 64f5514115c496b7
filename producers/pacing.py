"""Pacing: how fast events leave, by a target rate and/or the source's own clock."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Holds back event ``n`` (with source time ``t_ms``) until both limits allow it.

    - ``rate``: at most this many events per wall second (None: unlimited);
    - ``speed``: source time runs this many times faster than wall time (None: unlimited);
    - ``live_edge``: never before the wall clock reaches the event's time (``wall``, epoch seconds):
      what goes into shared topics must not come from the future (see ``producers.runs``).

    >>> sleeps = []
    >>> pacer = Pacer(rate=None, speed=10, clock=lambda: 0.0, sleep=sleeps.append)
    >>> pacer.wait(0); pacer.wait(2_000); sleeps
    [0.2]
    >>> edge = Pacer(None, None, live_edge=True, clock=lambda: 5.0, sleep=sleeps.append, wall=lambda: 100.0)
    >>> edge.wait(99_000); edge.wait(101_500); sleeps[1:]
    [1.5]
    """

    def __init__(
        self,
        rate: float | None,
        speed: float | None,
        *,
        live_edge: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.speed = speed if speed and speed > 0 else None
        self.live_edge = live_edge
        self._wall = wall
        self._clock = clock
        self._sleep = sleep
        self._start_wall: float | None = None
        self._start_source_ms = 0
        self._count = 0

    def due(self, source_time_ms: int) -> float:
        """Wall time (on ``clock``) at which the next event may leave."""
        if self._start_wall is None:
            self._start_wall, self._start_source_ms = self._clock(), source_time_ms
        due = self._start_wall
        if self.rate is not None:
            due = max(due, self._start_wall + self._count / self.rate)
        if self.speed is not None:
            due = max(due, self._start_wall + (source_time_ms - self._start_source_ms) / 1000 / self.speed)
        if self.live_edge:
            early_s = source_time_ms / 1000 - self._wall()
            if early_s > 0:
                due = max(due, self._clock() + early_s)
        return due

    @property
    def paces(self) -> bool:
        """Whether ``wait`` can ever hold an event back."""
        return bool(self.rate or self.speed or self.live_edge)

    def wait(self, source_time_ms: int) -> None:
        due = self.due(source_time_ms)
        self._count += 1
        delay = due - self._clock()
        if delay > 0.001:
            self._sleep(delay)
