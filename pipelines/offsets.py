"""Which input offsets a worker may commit, kept by the worker itself rather than by Faust's acks.

Faust (0.15.3) tracks acknowledged offsets per partition and commits the run of consecutive ones.
Around a rebalance that bookkeeping breaks in two ways we saw in the two-worker and kill -9 tests
(one run in four): acks made while partitions are revoked land in the tracking after Faust has
cleared it, and a message fetched before the rebalance can be delivered after the seek to the
committed offset, which makes Faust record a gap and then drop the re-fetched messages before it.
The same offsets then sit twice in the acked list and the committed offset creeps forward by one
per commit (a stalled worker), or moves past messages nobody processed.

So the runner keeps the book: for every partition it knows the offset it expects next (the
committed offset when it starts reading the partition), takes each message only in that order,
drops a message it already took (a re-delivery), and reports a jump ahead (the messages between
were skipped by the client: the caller seeks back, unless the broker no longer has them). A message
is *done* once its outputs and the state that reflects it are durable; the offset to commit for a
partition is the first one not yet done.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

TP = tuple[str, int]  # (topic, partition)


class Verdict(Enum):
    TAKE = "take"  # the offset expected next: process it
    DUPLICATE = "duplicate"  # taken before in this assignment: drop it
    AHEAD = "ahead"  # later than expected: the client skipped messages before it


class OffsetBook:
    """Per partition: the next offset to take, the offsets done, and the next offset to commit."""

    def __init__(self) -> None:
        self._next: dict[TP, int] = {}  # the offset expected next, per partition read in this assignment
        self._base: dict[TP, int] = {}  # the first offset not yet done (what a commit says)
        self._done: dict[TP, set[int]] = {}  # done offsets at or after base
        self._committed: dict[TP, int] = {}  # the last offset this book reported committed

    def knows(self, tp: TP) -> bool:
        """Whether reading ``tp`` has started in this assignment (``start`` was called)."""
        return tp in self._next

    def start(self, tp: TP, offset: int) -> None:
        """Reading ``tp`` starts at ``offset`` (its committed offset, or its first if none)."""
        self._next[tp] = offset
        self._base[tp] = offset
        self._committed[tp] = offset
        self._done[tp] = set()

    def check(self, tp: TP, offset: int) -> Verdict:
        """Where ``offset`` of ``tp`` stands against the expected order; TAKE moves the order on."""
        expected = self._next[tp]
        if offset == expected:
            self._next[tp] = offset + 1
            return Verdict.TAKE
        return Verdict.DUPLICATE if offset < expected else Verdict.AHEAD

    def expected(self, tp: TP) -> int:
        return self._next[tp]

    def skip_to(self, tp: TP, offset: int) -> None:
        """The messages of ``tp`` before ``offset`` are gone from the broker (retention): go on there."""
        done = self._done[tp]
        done.update(range(self._next[tp], offset))
        self._next[tp] = offset

    def done(self, messages: Iterable[tuple[str, int, int]]) -> None:
        """These (topic, partition, offset) are durable: outputs and state."""
        book = self._done
        for topic, partition, offset in messages:
            found = book.get((topic, partition))
            if found is not None:  # a partition revoked since is not ours to commit
                found.add(offset)

    def commits(self) -> dict[TP, int]:
        """The offsets to commit now (first not done, per partition), where they moved on."""
        out: dict[TP, int] = {}
        for tp, done in self._done.items():
            base = self._base[tp]
            while base in done:
                done.remove(base)
                base += 1
            self._base[tp] = base
            if base > self._committed[tp]:
                out[tp] = base
        return out

    def committed(self, offsets: dict[TP, int]) -> None:
        """The broker accepted these commits."""
        self._committed.update(offsets)

    def last_committed(self, tp: TP) -> int | None:
        return self._committed.get(tp)

    def forget(self, tps: Iterable[TP]) -> None:
        """Partitions no longer assigned: their next reading starts from the committed offset."""
        for tp in tps:
            for book in (self._next, self._base, self._done, self._committed):
                book.pop(tp, None)
