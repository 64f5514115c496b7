"""The loop closes on the real broker: a jam -> DOWN -> schedule request (`twin process`) -> plan
(`twin schedule serve`) -> the simulated line dispatches by the plan, and the events that follow
carry the cause's correlation id."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from pipelines.scheduler import SchedulerService
from processors.scheduling.decide import DecisionConfig
from producers.plans import PlanFollower
from producers.session import simulator_records
from sim import Simulator, load_factory
from sim.layout import FaultSpec
from tests.integration.processors.pipeline_helpers import START_MS, Namespace, namespace
from twin.settings import Settings
from twin.topics import PRODUCTION, SCHEDULE_PLANS, SCHEDULE_REQUESTS, STATE

JAM_S = 600


def test_a_breakdown_is_replanned_and_the_line_follows_the_plan(settings: Settings, tmp_path: Path) -> None:
    with namespace(settings, tmp_path) as ns:
        scoped = settings.model_copy(deep=True)
        scoped.scheduler.topic_prefix = ns.prefix
        sim = Simulator(load_factory(), seed=3, start_time_ms=START_MS)
        sim.inject(FaultSpec(machine="press-1", kind="jam", start_s=JAM_S, duration_s=240, severity=1.0))
        follower = PlanFollower(scoped, sim, prefix=ns.prefix)
        records = simulator_records(sim, 3, START_MS, follower=follower)
        # Up to the jam and a little after: the worker sees press-1 go DOWN and asks for a plan.
        before = [r for r in _until(records, START_MS + (JAM_S + 30) * 1000)]
        down = next(
            r.record for r in before
            if r.topic == STATE and r.record["machine_id"] == "press-1" and r.record["state"] == "DOWN"
        )  # fmt: skip
        ns.start_worker()
        ns.publish(before)
        request = _wait_for(ns, SCHEDULE_REQUESTS, lambda r: r["trigger_machine_id"] == "press-1")
        assert request["correlation_id"] == down["correlation_id"] == down["event_id"]

        plan = answer(scoped, ns, request, ("cpsat", "edd", "fifo"))
        assert plan["correlation_id"] == request["correlation_id"]
        assert plan["assignments"] and {c["solver"] for c in plan["comparison"]} == {"cpsat", "edd", "fifo"}

        # The line adopts it at its next step and dispatches by it from then on.
        deadline = time.monotonic() + 30
        while not follower.adopted and time.monotonic() < deadline:
            follower.poll()
            time.sleep(0.2)
        assert [p.plan_id for p in follower.adopted] == [plan["plan_id"]]
        assert sim.policy("line-1").name == "plan"
        after = [r for r in _until(records, START_MS + (JAM_S + 300) * 1000)]
        line_events = [
            r.record for r in after if r.topic in (STATE, PRODUCTION) and r.record["line_id"] == "line-1"
        ]
        assert line_events and all(e["correlation_id"] == plan["correlation_id"] for e in line_events)
        planned = {a["job_id"] for a in plan["assignments"]}
        made = {e["part_id"] for e in line_events if "part_id" in e}
        assert planned & made, "the line worked on none of the planned parts"
        follower.close()


def answer(
    scoped: Settings, ns: Namespace, request: dict[str, Any], solvers: tuple[str, ...]
) -> dict[str, Any]:
    """``twin schedule serve``'s plan for ``request`` (the service runs until it is on the topic)."""
    service = SchedulerService(
        scoped, DecisionConfig(solvers=solvers, deadline_s=2), group_id=f"{ns.app_id}-scheduler"
    )
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        plan: dict[str, Any] = _wait_for(
            ns, SCHEDULE_PLANS, lambda r: r["request_id"] == request["request_id"]
        )
    finally:
        stop.set()
        thread.join(30)
    return plan


def _until(records, until_ms: int):  # type: ignore[no-untyped-def]
    for r in records:
        yield r
        if int(r.record["event_time"]) >= until_ms:
            return


def _wait_for(ns, topic: str, match, limit_s: float = 120.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        for r in ns.outputs(topic)[topic]:
            if match(r):
                return r
        time.sleep(1)
    raise AssertionError(f"nothing matching on {topic} within {limit_s}s; logs: {ns.logs}")
