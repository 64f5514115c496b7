"""Decision latency: a ``schedule.requests`` record produced -> its plan read back from
``schedule.plans``, on the real broker, for requests the shipped line really makes.

The requests come from the default layout (or ``--layout job-shop``): the simulator runs
``--hours`` and the processors' ``ScheduleTrigger``, told the layout's stages, turns its DOWN reports
into requests (as ``twin process --factory`` does). Each round sends one request at a time and waits for its plan, to three
answerers in turn, in one run:

- ``classical``: our ``SchedulerService`` with CP-SAT and the four rules (``TWIN_SCHEDULER`` deadline
  ``--deadline`` s);
- ``with-qaoa``: the same plus annealing and QAOA on the fast sampler (``--qaoa-deadline`` s);
- ``floor``: a bare confluent-kafka loop that decodes, runs CP-SAT alone with the same time limit
  (EDD when CP-SAT has no plan in time) and publishes its plan: what any answerer has to pay
  (broker round trips, Avro, CP-SAT).

Reported: p50/p99/max latency per answerer, and ours / floor at p50 and p99. Needs ``twin infra up``.

    .venv/bin/python bench/schedule_latency.py --requests 40
    .venv/bin/python bench/schedule_latency.py --requests 40 --layout job-shop --hours 24
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_END, TopicPartition

from pipelines.scheduler import SchedulerService
from pipelines.topics import delete_topics, ensure_topics
from processors.base import plain
from processors.schedule_trigger import ScheduleTrigger, ScheduleTriggerConfig
from processors.scheduling.cpsat import CpSatSolver
from processors.scheduling.decide import Decision, DecisionConfig, plan_record
from processors.scheduling.formats import from_request
from processors.scheduling.model import Budget
from processors.scheduling.rules import RuleSolver
from producers.records import EventMapper
from schemas import Codecs
from sim import Simulator, load_factory, plant_of
from twin.clients import kafka_consumer, kafka_producer, schema_registry
from twin.settings import Settings
from twin.topics import PRODUCTION, SCHEDULE_PLANS, SCHEDULE_REQUESTS, STATE, prefixed


def line_requests(hours: float, seed: int, layout: str | None = None) -> list[dict[str, Any]]:
    factory = load_factory(layout) if layout else load_factory()
    plant = plant_of(factory)
    config = ScheduleTriggerConfig(line_order=plant.line_order(), line_stages=plant.line_stages())
    sim = Simulator(factory, seed=seed)
    mapper = EventMapper(seed)
    triggers: dict[str, ScheduleTrigger] = {}
    out: list[dict[str, Any]] = []
    for event in sim.run(until_ms=sim.start_time_ms + int(hours * 3_600_000)):
        o = mapper.map(event)
        if o.topic not in (STATE, PRODUCTION):
            continue
        line = str(o.record["line_id"])
        trigger = triggers.setdefault(line, ScheduleTrigger(line, config))
        out += [e.record for e in trigger.process_one(o.topic, o.record) if e.topic == SCHEDULE_REQUESTS]
    return out


def floor_loop(settings: Settings, prefix: str, limit_s: float, stop: threading.Event) -> None:
    registry = schema_registry(settings)
    read = Codecs(registry, prefix=prefix, register=False, logical_types=False)
    write = Codecs(registry, prefix=prefix, logical_types=False)
    consumer = kafka_consumer(
        settings, f"bench-floor-{uuid.uuid4().hex[:6]}", **{"auto.offset.reset": "latest"}
    )
    producer = kafka_producer(settings, **{"linger.ms": 0})
    topic = prefix + SCHEDULE_REQUESTS
    consumer.subscribe([topic])
    try:
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            request = plain(read(topic).decode(msg.value()))
            inst = from_request(request)
            result = CpSatSolver().solve(inst, Budget(time_limit_s=limit_s))
            if not result.ok:  # CP-SAT found nothing in time: any answerer must still answer
                result = RuleSolver("edd").solve(inst, Budget())
            record = plan_record(
                request, inst, Decision([result], result, result.bound, result.wall_s), "floor", "floor"
            )
            producer.produce(
                prefix + SCHEDULE_PLANS, write(prefix + SCHEDULE_PLANS).encode(record), record["line_id"]
            )
            producer.flush(10)
    finally:
        consumer.close()
        registry.close()


def measure(settings: Settings, prefix: str, requests: list[dict[str, Any]]) -> list[float]:
    registry = schema_registry(settings)
    codecs = Codecs(registry, prefix=prefix, logical_types=False)
    plans_topic = prefix + SCHEDULE_PLANS
    consumer = kafka_consumer(settings, f"bench-reader-{uuid.uuid4().hex[:6]}")
    parts = consumer.list_topics(plans_topic, timeout=10).topics[plans_topic].partitions
    consumer.assign([TopicPartition(plans_topic, p, OFFSET_END) for p in parts])
    producer = kafka_producer(settings, **{"linger.ms": 0})
    latencies = []
    for base in requests:
        rid = str(uuid.uuid4())
        request = {**base, "request_id": rid, "event_id": rid}
        value = codecs(prefix + SCHEDULE_REQUESTS).encode(request)
        t0 = time.perf_counter()
        producer.produce(prefix + SCHEDULE_REQUESTS, value, request["line_id"])
        producer.flush(10)
        deadline = t0 + 60
        while time.perf_counter() < deadline:
            msg = consumer.poll(0.05)
            if msg is None or msg.error() is not None:
                continue
            if str(codecs(plans_topic).decode(msg.value())["request_id"]) == rid:
                latencies.append(time.perf_counter() - t0)
                break
        else:
            raise SystemExit(f"no plan for request {rid} within 60 s")
    consumer.close()
    registry.close()
    return latencies


def prefix_of(prefix: str) -> Callable[[str], bool]:
    return lambda name: name.startswith(prefix)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=30, help="requests per answerer")
    ap.add_argument("--hours", type=float, default=72, help="simulated hours to draw requests from")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--layout", help="packaged layout (e.g. job-shop) or file; default: the shipped line")
    ap.add_argument("--deadline", type=float, default=1.0)
    ap.add_argument("--qaoa-deadline", type=float, default=5.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    settings = Settings()
    pool = line_requests(args.hours, args.seed, args.layout)
    if not pool:
        raise SystemExit("the simulated line made no request; raise --hours")
    requests = [pool[i % len(pool)] for i in range(args.requests)]
    sizes = [len(from_request(r).operations) for r in requests]
    print(
        f"{len(pool)} requests from {args.hours:g} simulated hours; operations per request: "
        f"median {statistics.median(sizes):g}, max {max(sizes)}"
    )
    answerers = {
        "classical": DecisionConfig(
            solvers=("cpsat", "edd", "mwkr", "spt", "fifo"), deadline_s=args.deadline
        ),
        "with-qaoa": DecisionConfig(
            solvers=("cpsat", "edd", "mwkr", "spt", "fifo", "sa", "qaoa"),
            deadline_s=args.qaoa_deadline,
            options={"qaoa": {"backend": "fast"}},
        ),
        "floor": None,
    }
    results: dict[str, dict[str, float]] = {}
    for name, config in answerers.items():
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        ensure_topics(settings, prefixed(prefix))
        scoped = settings.model_copy(deep=True)
        scoped.scheduler.topic_prefix = prefix
        stop = threading.Event()
        if config is None:
            thread = threading.Thread(
                target=floor_loop, args=(settings, prefix, args.deadline * 0.9, stop), daemon=True
            )
        else:
            service = SchedulerService(scoped, config, group_id=f"bench-sched-{uuid.uuid4().hex[:6]}")
            thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        time.sleep(3)  # the consumer joins its group
        try:
            lat = measure(settings, prefix, requests)
        finally:
            stop.set()
            thread.join(30)
            delete_topics(settings, prefix_of(prefix))
        results[name] = {"p50_s": pct(lat, 0.5), "p99_s": pct(lat, 0.99), "max_s": max(lat), "n": len(lat)}
        print(
            f"{name:10s} p50 {results[name]['p50_s']:.3f} s  p99 {results[name]['p99_s']:.3f} s  max {results[name]['max_s']:.3f} s"
        )
    floor = results["floor"]
    print("\n| answerer | requests | p50 s | p99 s | max s | p50 / floor | p99 / floor |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['n']:.0f} | {r['p50_s']:.3f} | {r['p99_s']:.3f} | {r['max_s']:.3f} | "
            f"{r['p50_s'] / floor['p50_s']:.2f} | {r['p99_s'] / floor['p99_s']:.2f} |"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
