"""The step that streams the simulated line into Kafka, with live counts."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from cli.demo.offsets import end_offsets
from cli.demo.run import SOURCE_TOPICS, DemoRun
from cli.infra import console
from twin.errors import InfraError

if TYPE_CHECKING:
    from producers.publisher import PublishStats
    from producers.records import Outgoing

TICK_S = 2.0  # how often the live counts print


def stream_line(run: DemoRun) -> None:
    """``twin produce`` for ``--duration`` seconds at ``--speed``; every event must be acknowledged."""
    from producers import Pacer
    from producers.runs import RunLog
    from producers.session import ProduceSession, simulator_records
    from sim import Simulator

    run.before = end_offsets(run.settings, SOURCE_TOPICS)
    # Sped up, the line starts in the past and its clock reaches the wall clock as it ends: the
    # shared topics never hold events from the future (see producers.runs).
    log = RunLog(run.settings.infra.root / "runs.jsonl")  # an earlier run's stretch is not overwritten
    run.started_ms = start_ms = log.start_of(
        run.run_id,
        [line.id for line in run.factory.lines],
        duration_s=run.options.duration,
        speed=run.options.speed,
    )
    seed = run.options.seed
    simulator = Simulator(run.factory, seed=seed, start_time_ms=start_ms)
    end_ms = start_ms + round(run.options.duration * run.options.speed * 1000)
    console.print(f"run {run.run_id} (seed {seed}): simulated time {_clock(start_ms)} to {_clock(end_ms)}")
    session = ProduceSession(run.settings)
    last_tick = [0.0]

    def tick(stats: PublishStats) -> None:
        if time.monotonic() - last_tick[0] >= TICK_S:
            last_tick[0] = time.monotonic()
            counts = "  ".join(f"{t.split('.')[1]} {n:,}" for t, n in sorted(run.produced.items()))
            console.print(
                f"  {stats.rate():7,.0f} events/s  acked {stats.acked:>8,}  failed {stats.failed}  | {counts}"
            )

    stats = session.run(
        _counted(run, simulator_records(simulator, seed, start_ms, run_id=str(run.run_id))),
        pacer=Pacer(None, run.options.speed, live_edge=True),
        duration_s=run.options.duration,
        on_tick=tick,
    )
    remaining = session.close()
    console.print(
        f"produced {stats.produced:,}: acked {stats.acked:,}, failed {stats.failed}, "
        f"unacknowledged {remaining}"
    )
    if stats.failed or remaining:
        msg = f"{stats.failed + remaining} events were not acknowledged"
        raise InfraError(msg)
    run.after = end_offsets(run.settings, SOURCE_TOPICS)


def _clock(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000))


def _counted(run: DemoRun, source: Iterable[Outgoing]) -> Iterator[Outgoing]:
    """``source``, counted per topic, its last event time kept (where the simulated clock got to)."""
    for item in source:
        run.produced[item.topic] = run.produced.get(item.topic, 0) + 1
        run.last_event_ms = int(item.record["event_time"])
        yield item
