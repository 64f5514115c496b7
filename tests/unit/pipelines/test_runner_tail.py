"""The runner reads by hand what the client dropped at the end of a partition (no later message
would reveal the gap): only once the worker is idle, only what it has not taken, in offset order."""

from __future__ import annotations

import asyncio
import time
from typing import Any, NamedTuple

from pipelines.offsets import Verdict
from pipelines.processing import TAIL_QUIET_S, Runner
from pipelines.stage import Inbound


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, highs: dict[TP, int]) -> None:
        self.highs = highs

    def assignment(self) -> set[TP]:
        return set(self.highs)

    def highwater(self, tp: TP) -> int | None:
        return self.highs.get(tp)


class FakeWorker:
    def __init__(self, highs: dict[TP, int], committed: dict[tuple[str, int], int]) -> None:
        self.app = type("App", (), {"consumer": FakeConsumer(highs)})()
        self.committed = committed
        self.reads: list[tuple[tuple[str, int], int, int]] = []

    async def start_offset(self, tp: tuple[str, int]) -> int:
        return self.committed.get(tp, 0)

    async def read_range(self, tp: tuple[str, int], start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        self.reads.append((tp, start, end))
        return [(at, b"k", b"v%d" % at) for at in range(start, end)]

    def send(self, out: Any) -> None:
        raise AssertionError("the fake stage derives nothing")


class FakeStage:
    def __init__(self) -> None:
        self.offered: list[Inbound] = []
        self.released: list[Inbound] = []
        self.name = "fake"

    def offer(self, msg: Inbound, now: float) -> list[Any]:
        self.offered.append(msg)
        self.released.append(msg)
        return []

    def release(self, *_: Any) -> list[Any]:
        return []


def runner(
    highs: dict[TP, int], committed: dict[tuple[str, int], int]
) -> tuple[Runner, FakeWorker, FakeStage]:
    worker, stage = FakeWorker(highs, committed), FakeStage()
    r = Runner(worker, stage, table=None, every_events=10**9)  # type: ignore[arg-type]
    return r, worker, stage


def test_an_idle_worker_reads_the_dropped_tail_of_its_partitions() -> None:
    highs = {TP("in", 0): 12, TP("in", 1): 5, TP("other", 0): 9}
    r, worker, stage = runner(highs, {("in", 0): 10, ("in", 1): 5})
    r.book.start(("in", 0), 10)
    assert r.book.check(("in", 0), 10) is Verdict.TAKE  # the client handed over offset 10, then nothing
    r._last_input = time.monotonic() - TAIL_QUIET_S - 1
    asyncio.run(r.catch_tail({"in"}))
    assert worker.reads == [(("in", 0), 11, 12)]  # not partition 1 (at its end), not another topic
    assert [(m.partition, m.offset) for m in stage.offered] == [(0, 11)]
    assert r.book.expected(("in", 0)) == 12


def test_a_busy_worker_leaves_the_client_to_deliver() -> None:
    r, worker, stage = runner({TP("in", 0): 12}, {("in", 0): 3})
    r._last_input = time.monotonic()  # input just arrived: the client is delivering
    asyncio.run(r.catch_tail({"in"}))
    assert worker.reads == [] and stage.offered == []
