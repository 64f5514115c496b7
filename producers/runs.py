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

Two sped-up runs of the same line a few minutes apart would cover the same stretch of the past, and
what is keyed by the time (a KPI window of a machine) would be written twice. So the runs of this
machine are logged (``RunLog``, under ``.twin/``) and a sped-up run is placed (``place``) where it
meets no earlier run of its lines: ending now if that is free, else right before the earliest run
it would overlap. A retry (``--run-id``) takes its logged stretch again.

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

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

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


@dataclass(frozen=True, slots=True)
class Stretch:
    """The simulated time a run covers, on its lines."""

    run_id: str
    lines: tuple[str, ...]
    start_ms: int
    end_ms: int


def place(start_ms: int, end_ms: int, taken: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """``[start_ms, end_ms)`` if it meets none of ``taken``, else the same length moved back to end
    where the earliest stretch it meets begins, again until it meets none.

    >>> place(100, 200, [])
    (100, 200)
    >>> place(100, 200, [(150, 210)])          # meets a later run: moved before it
    (50, 150)
    >>> place(100, 200, [(150, 210), (20, 60)])  # and before the one that would then be in the way
    (-80, 20)
    """
    spans = sorted(taken)
    length = end_ms - start_ms
    moved = True
    while moved:
        moved = False
        for s, e in spans:
            if s < end_ms and start_ms < e:  # overlap
                end_ms = s
                start_ms = end_ms - length
                moved = True
    return start_ms, end_ms


class RunLog:
    """The simulated runs made on this machine, one JSON line each (``.twin/runs.jsonl``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def stretches(self) -> list[Stretch]:
        if not self.path.is_file():
            return []
        out: list[Stretch] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                d = json.loads(line)
                out.append(Stretch(str(d["run_id"]), tuple(d["lines"]), int(d["start_ms"]), int(d["end_ms"])))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line (a run killed while logging): it placed nothing
        return out

    def find(self, run_id: str) -> Stretch | None:
        return next((s for s in self.stretches() if s.run_id == run_id), None)

    def add(self, stretch: Stretch) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(stretch)) + "\n")

    def start_of(
        self, run: RunId, lines: Sequence[str], *, duration_s: float | None, speed: float | None
    ) -> int:
        """Where run ``run`` starts: its logged stretch when it is a retry, else a new stretch that
        meets no earlier run of ``lines`` (logged now). Only a sped-up run with a duration has a
        known length to place; the others start as ``RunId.start_ms`` says (now, or a day back)."""
        known = self.find(str(run))
        if known is not None:
            return known.start_ms
        start = run.start_ms(duration_s=duration_s, speed=speed)
        if duration_s and speed and speed > 1:
            end = run.launched_ms + round(duration_s * 1000)
            taken = [(s.start_ms, s.end_ms) for s in self.stretches() if set(s.lines) & set(lines)]
            start, end = place(start, end, taken)
            self.add(Stretch(str(run), tuple(lines), start, end))
        return start
