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
    from producers.plans import AdoptedPlan
    from producers.publisher import PublishStats
    from producers.records import Outgoing
    from sim import Simulator
    from sim.layout import FaultSpec

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
    jam = _breakdown(run, simulator)
    if jam is not None:
        console.print(
            f"a jam stops {jam.machine} at {_clock(start_ms + round(jam.start_s * 1000))} for "
            f"{jam.duration_s:g} s: the scheduler re-plans the line and the line follows the plan"
        )
    wear = _wear(run, simulator)
    if wear is not None:
        assert wear.duration_s is not None
        console.print(
            f"bearing wear grows on {wear.machine} from {_clock(start_ms + round(wear.start_s * 1000))} and "
            f"would fail it at {_clock(start_ms + round((wear.start_s + wear.duration_s) * 1000))}: its "
            "remaining useful life falls, a MaintenanceDue alarm and a maintenance request follow, and the "
            "line stops for maintenance when the plan says"
        )
    session = ProduceSession(run.settings)
    from producers.plans import PlanFollower

    follower = PlanFollower(run.settings, simulator, on_adopt=_announce)
    run.on_exit(follower.close)
    last_tick = [0.0]

    def tick(stats: PublishStats) -> None:
        if time.monotonic() - last_tick[0] >= TICK_S:
            last_tick[0] = time.monotonic()
            counts = "  ".join(f"{t.split('.')[1]} {n:,}" for t, n in sorted(run.produced.items()))
            console.print(
                f"  {stats.rate():7,.0f} events/s  acked {stats.acked:>8,}  failed {stats.failed}  | {counts}"
            )

    stats = session.run(
        _counted(
            run, simulator_records(simulator, seed, start_ms, run_id=str(run.run_id), follower=follower)
        ),
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


def _breakdown(run: DemoRun, simulator: Simulator) -> FaultSpec | None:
    """A jam on the first line's middle station, a third into the run (a scenario's own faults may
    fall outside a short demo window): the breakdown the re-planning loop answers."""
    from sim.layout import FaultSpec

    stations = run.factory.lines[0].stations
    if len(stations) < 2:
        return None
    window_s = run.options.duration * run.options.speed
    fault = FaultSpec(
        machine=stations[len(stations) // 2].id,
        kind="jam",
        start_s=window_s / 3,
        duration_s=min(600.0, max(30.0, window_s / 6)),
        severity=1.0,
    )
    simulator.inject(fault)
    return fault


def _wear(run: DemoRun, simulator: Simulator) -> FaultSpec | None:
    """Bearing wear on the first line's first machine with a vibration channel, growing from 5 % of
    the run until it would fail the machine at 85 %: predictive maintenance has to beat it."""
    from sim.catalog import ChannelRole
    from sim.layout import FaultSpec

    station = next((s for s in run.factory.lines[0].stations if s.has_role(ChannelRole.VIBRATION)), None)
    if station is None:
        return None
    window_s = run.options.duration * run.options.speed
    fault = FaultSpec(
        machine=station.id,
        kind="bearing_wear",
        start_s=0.05 * window_s,
        duration_s=0.8 * window_s,
        severity=0.9,
        fails=True,
    )
    simulator.inject(fault)
    return fault


def _announce(plan: AdoptedPlan) -> None:
    from producers.plans import maintenance_windows

    console.print(
        f"  [bold]re-plan[/] line {plan.line_id} now follows plan {plan.plan_id[:8]} ({plan.solver}); its "
        f"events carry correlation {plan.correlation_id[:8]}"
    )
    for machine_id, start_ms, seconds in maintenance_windows(plan.record):
        console.print(
            f"  [bold]maintenance[/] of {machine_id} planned at {_clock(start_ms)} for {seconds:,.0f} s"
        )


def _clock(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000))


def _counted(run: DemoRun, source: Iterable[Outgoing]) -> Iterator[Outgoing]:
    """``source``, counted per topic, its last event time kept (where the simulated clock got to)."""
    for item in source:
        run.produced[item.topic] = run.produced.get(item.topic, 0) + 1
        run.last_event_ms = int(item.record["event_time"])
        yield item
