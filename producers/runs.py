"""Runs of the simulated line: who a run is (its id) and where its clock sits on the wall clock.

Every ``twin produce`` or ``twin demo`` of the simulator is a *run*. Its id is the wall-clock instant
it was launched, in ISO basic form (``20261207T164012.345Z``). The id goes into every event's
``source`` (``sim:<run id>:<line>``) and seeds the event ids, so

- two runs (even with the same seed) never share an event id: their records are all kept;
- a run retried with ``--run-id`` (same seed, duration and speed) produces the very same events,
  ids included, so the sinks store them once.

Time: a run never stamps an event later than the wall clock (see ``docs/processing.md``). A run
sped up ``speed`` times for ``duration`` wall seconds starts ``duration * (speed - 1)`` seconds in
the past, so its simulated clock reaches the wall clock exactly when it ends. A run at unlimited
speed (``--rate`` alone, a load test) starts a day back and fills that day as fast as the rate
allows. The pacer holds any event that would still be early (``Pacer(live_edge=True)``).

>>> run = RunId.parse("20261207T164012.345Z")
>>> run.launched_ms
1796661612345
>>> str(run), run.source("line-1")
('20261207T164012.345Z', 'sim:20261207T164012.345Z:line-1')
>>> run.start_ms(duration_s=20, speed=120) == run.launched_ms - 20 * 119 * 1000
True
>>> run.start_ms(duration_s=None, speed=120) == run.launched_ms  # endless: live from now on
True
>>> run.launched_ms - run.start_ms(duration_s=3, speed=None)  # unlimited speed: the past day
86400000
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from twin.errors import ConfigError

_FORMAT = "%Y%m%dT%H%M%S.%fZ"
UNLIMITED_BACKFILL_MS = 86_400_000  # where a run at unlimited speed starts: a day before its launch


@dataclass(frozen=True, slots=True)
class RunId:
    launched_ms: int

    @classmethod
    def new(cls, now_ms: int | None = None) -> RunId:
        return cls(int(time.time() * 1000) if now_ms is None else now_ms)

    @classmethod
    def parse(cls, text: str) -> RunId:
        """A run id printed by an earlier run; a one-line error for anything else."""
        try:
            stamp = datetime.strptime(text.strip(), _FORMAT).replace(tzinfo=UTC)
        except ValueError:
            msg = (
                f"run id {text!r} is not one a run printed (they look like 20261207T164012.345Z: "
                "the instant the run was launched)"
            )
            raise ConfigError(msg) from None
        return cls(round(stamp.timestamp() * 1000))

    def __str__(self) -> str:
        stamp = datetime.fromtimestamp(self.launched_ms / 1000, UTC)
        return stamp.strftime("%Y%m%dT%H%M%S.") + f"{self.launched_ms % 1000:03d}Z"

    def source(self, line_id: str) -> str:
        """The ``source`` of the run's events on ``line_id``."""
        return f"sim:{self}:{line_id}"

    def start_ms(self, *, duration_s: float | None, speed: float | None) -> int:
        """The simulated instant the run starts at: early enough that a sped-up run with a known
        duration ends at the wall clock, never later than its launch."""
        if not speed:
            return self.launched_ms - UNLIMITED_BACKFILL_MS
        if duration_s and speed > 1:
            return self.launched_ms - round(duration_s * (speed - 1) * 1000)
        return self.launched_ms
