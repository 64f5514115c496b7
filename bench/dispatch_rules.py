"""Dispatch rules compared on the job-shop layout (``sim/factories/job-shop.yaml``).

    .venv/bin/python bench/dispatch_rules.py                  # 5 seeds, 8-hour shift, 120-order batch
    .venv/bin/python bench/dispatch_rules.py --seeds 10 --hours 8 --batch 120 --rules fifo,edd

Every rule runs on the same seeds, so on the same orders (arrival times and families come from
the line's own random stream, whatever the policy does); what each machine draws per part (cycle
time, scrap, time to its next breakdown) follows the work it gets. Two runs per rule and seed:

- **shift**: the layout as shipped for ``--hours``: a backlog at the start and orders arriving all
  shift. Orders shipped; mean tardiness (minutes past due) and the share late over every order of
  the shift, shipped ones at their shipping time and those still in the shop at the shift end (so a
  rule cannot look good by leaving late orders waiting); orders still in the shop; setups done and
  the share of machine time spent in them.
- **batch**: ``--batch`` orders released at the start and nothing after: the makespan (until the
  last order left the shop, shipped or scrapped) and the batch's mean tardiness.

Quality, not speed: numbers are mean +- standard deviation over the seeds. Telemetry is sampled
hourly here: the part flow does not depend on it, and the runs are ten times quicker.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sim import (
    RULE_NAMES,
    FactorySpec,
    PartProducedEvent,
    Simulator,
    StateChangeEvent,
    load_factory,
    parse_factory,
    policy_by_name,
)

LINE = "shop-1"
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Shift:
    shipped: int
    mean_tardiness_min: float
    late_share: float
    open_orders: int
    setups: int
    setup_share: float


@dataclass(frozen=True)
class Batch:
    makespan_h: float
    mean_tardiness_min: float


def layout(batch: int | None = None) -> FactorySpec:
    """The job shop with hourly telemetry; with ``batch``, only that many orders at the start."""
    data: dict[str, Any] = load_factory("job-shop").model_dump(mode="json", by_alias=True)
    (line,) = data["lines"]
    for station in line["stations"]:
        station["telemetry_interval_s"] = 3600
    if batch is not None:
        line["release"] = {**line["release"], "initial_orders": batch, "interarrival_s": None}
    return parse_factory(data, source="bench")


def last_stage(factory: FactorySpec) -> set[str]:
    spec = factory.lines[0]
    _, members = spec.stages()[-1]
    return {spec.stations[i].id for i in members}


def run_shift(factory: FactorySpec, rule: str, seed: int, hours: float) -> Shift:
    sim = Simulator(factory, seed=seed, policies={LINE: policy_by_name(rule)})
    end = sim.start_time_ms + round(hours * HOUR_MS)
    sinks = last_stage(factory)
    tardiness: list[float] = []
    setups = 0
    setup_ms = 0
    since: dict[str, int] = {}
    for e in sim.run(end):
        if isinstance(e, PartProducedEvent):
            if e.good and e.machine_id in sinks and e.due_ms is not None:
                tardiness.append(max(0, e.time_ms - e.due_ms) / 60_000)
        elif isinstance(e, StateChangeEvent):
            if e.state == "SETUP" and e.reason.startswith("setup:"):
                setups += 1
                since[e.machine_id] = e.time_ms
            elif e.previous == "SETUP" and e.machine_id in since:
                setup_ms += e.time_ms - since.pop(e.machine_id)
    setup_ms += sum(end - t for t in since.values())
    line = sim.observe().line(LINE)
    open_orders = line.released - line.shipped - sum(m.scrap for m in line.machines)
    orders = len(tardiness) + open_orders
    return Shift(
        shipped=line.shipped,
        mean_tardiness_min=(sum(tardiness) + line.lateness_in_line_s / 60) / orders,
        late_share=(sum(t > 0 for t in tardiness) + line.late_in_line) / orders,
        open_orders=open_orders,
        setups=setups,
        setup_share=setup_ms / (len(line.machines) * (end - sim.start_time_ms)),
    )


def run_batch(factory: FactorySpec, rule: str, seed: int) -> Batch:
    sim = Simulator(factory, seed=seed, policies={LINE: policy_by_name(rule)})
    sinks = last_stage(factory)
    tardiness: list[float] = []
    last = sim.start_time_ms
    for _ in range(7 * 24 * 6):  # ten-minute steps, a week at most
        for e in sim.step(600.0):
            if isinstance(e, PartProducedEvent) and (not e.good or e.machine_id in sinks):
                last = e.time_ms
                if e.good and e.due_ms is not None:
                    tardiness.append(max(0, e.time_ms - e.due_ms) / 60_000)
        line = sim.observe().line(LINE)
        if line.released == line.shipped + sum(m.scrap for m in line.machines):
            break
    else:
        msg = f"{rule} seed {seed}: the batch did not finish within a week"
        raise RuntimeError(msg)
    return Batch((last - sim.start_time_ms) / HOUR_MS, statistics.fmean(tardiness))


def spread(values: Sequence[float], fmt: str) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:{fmt}} ±{sd:{fmt}}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N (default 5)")
    parser.add_argument("--hours", type=float, default=8.0, help="shift length (default 8)")
    parser.add_argument("--batch", type=int, default=120, help="orders in the fixed batch (default 120)")
    parser.add_argument("--rules", default=",".join(RULE_NAMES), help="comma-separated rule names")
    args = parser.parse_args(argv)
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    seeds = range(1, args.seeds + 1)
    shift_layout, batch_layout = layout(), layout(args.batch)
    print(f"job-shop, line {LINE}: {args.seeds} seeds, {args.hours:g} h shift, {args.batch}-order batch")
    header = (
        f"{'rule':<6} {'shipped':>11} {'tardiness min':>15} {'late %':>11} "
        f"{'open':>10} {'setups':>10} {'setup %':>10} | {'batch makespan h':>17} {'batch tard. min':>15}"
    )
    print(header)
    print("-" * len(header))
    for rule in rules:
        shifts = [run_shift(shift_layout, rule, seed, args.hours) for seed in seeds]
        batches = [run_batch(batch_layout, rule, seed) for seed in seeds]
        print(
            f"{rule:<6} {spread([s.shipped for s in shifts], '.0f'):>11} "
            f"{spread([s.mean_tardiness_min for s in shifts], '.1f'):>15} "
            f"{spread([100 * s.late_share for s in shifts], '.0f'):>11} "
            f"{spread([s.open_orders for s in shifts], '.0f'):>10} "
            f"{spread([s.setups for s in shifts], '.0f'):>10} "
            f"{spread([100 * s.setup_share for s in shifts], '.1f'):>10} | "
            f"{spread([b.makespan_h for b in batches], '.2f'):>17} "
            f"{spread([b.mean_tardiness_min for b in batches], '.0f'):>15}",
            flush=True,
        )


if __name__ == "__main__":
    main()
