"""Pacing: how fast events leave, by a target rate and/or the source's own clock."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Holds back event ``n`` (with source time ``t_ms``) until both limits allow it.

    - ``rate``: at most this many events per wall second (None: unlimited);
    - ``speed``: source time runs this many times faster than wall time (None: unlimited).

    >>> sleeps = []
    >>> pacer = Pacer(rate=None, speed=10, clock=lambda: 0.0, sleep=sleeps.append)
    >>> pacer.wait(0); pacer.wait(2_000); sleeps
    [0.2]
    """

    def __init__(
        self,
        rate: float | None,
        speed: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.speed = speed if speed and speed > 0 else None
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
        return due

    def wait(self, source_time_ms: int) -> None:
        due = self.due(source_time_ms)
        self._count += 1
        delay = due - self._clock()
        if delay > 0.001:
            self._sleep(delay)
