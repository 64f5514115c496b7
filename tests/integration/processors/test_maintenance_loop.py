"""Predictive maintenance on the real broker: bearing wear -> RUL estimates (`twin process`, the
shipped model) -> a MaintenanceDue alarm and a maintenance request with the same correlation id ->
a plan with a maintenance window (`twin schedule serve`) -> the simulated line stops for maintenance
before the wear would have failed the machine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from producers.plans import PlanFollower
from producers.session import simulator_records
from sim import Simulator, load_factory
from sim.layout import FaultSpec
from tests.integration.processors.pipeline_helpers import START_MS, namespace
from tests.integration.processors.test_replan_loop import _until, _wait_for, answer
from twin.settings import Settings
from twin.topics import ALARMS, MAINTENANCE, SCHEDULE_REQUESTS, STATE

ONSET_S = 300
LIFE_S = 2400
FAILS_AT_MS = START_MS + (ONSET_S + LIFE_S) * 1000

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_wearing_machine_is_maintained_before_it_fails(settings: Settings, tmp_path: Path) -> None:
    with namespace(settings, tmp_path) as ns:
        scoped = settings.model_copy(deep=True)
        scoped.scheduler.topic_prefix = ns.prefix
        sim = Simulator(load_factory(), seed=5, start_time_ms=START_MS)
        sim.inject(
            FaultSpec(
                machine="cnc-1",
                kind="bearing_wear",
                start_s=ONSET_S,
                duration_s=LIFE_S,
                severity=0.9,
                fails=True,
            )
        )
        follower = PlanFollower(scoped, sim, prefix=ns.prefix)
        records = simulator_records(sim, 5, START_MS, follower=follower)
        # Well into the wear, far from the failure: the estimates must have seen it by then.
        before = list(_until(records, START_MS + (ONSET_S + LIFE_S // 2) * 1000))
        ns.start_worker()
        ns.publish(before)
        request = _wait_for(ns, SCHEDULE_REQUESTS, lambda r: r["trigger"] == "MAINTENANCE", limit_s=180)
        assert request["trigger_machine_id"] == "cnc-1"
        (window,) = [j for j in request["jobs"] if j["job_id"].startswith("maintenance:cnc-1:")]
        assert request["event_time"] < window["due_time"] <= FAILS_AT_MS + 3_600_000

        # The estimate that asked, and the alarm raised on it, share the request's correlation id.
        estimates = ns.outputs(MAINTENANCE)[MAINTENANCE]
        asking = [
            e
            for e in estimates
            if e["machine_id"] == "cnc-1" and e["correlation_id"] == request["correlation_id"]
        ]
        assert asking and not asking[0]["capped"] and asking[0]["rul_s"] < 3600
        alarm = _wait_for(
            ns, ALARMS, lambda a: a["alarm_type"] == "MaintenanceDue" and a["machine_id"] == "cnc-1"
        )
        assert alarm["correlation_id"] == request["correlation_id"]
        assert alarm["start_time"] < FAILS_AT_MS

        plan = answer(scoped, ns, request, ("cpsat", "edd"))
        assert plan["correlation_id"] == request["correlation_id"]
        (planned,) = [a for a in plan["assignments"] if a["job_id"] == window["job_id"]]
        assert (
            planned["machine_id"] == "cnc-1" and planned["start_time"] < FAILS_AT_MS
        )  # maintenance repairs at its start

        deadline = time.monotonic() + 30
        while plan["plan_id"] not in [p.plan_id for p in follower.adopted] and time.monotonic() < deadline:
            follower.poll()
            time.sleep(0.2)
        assert plan["plan_id"] in [p.plan_id for p in follower.adopted]  # (a breakdown may be re-planned too)
        after = list(_until(records, FAILS_AT_MS + 600_000))
        downs = [
            (r.record["event_time"], r.record["reason"]) for r in after
            if r.topic == STATE and r.record["machine_id"] == "cnc-1" and r.record["state"] == "DOWN"
        ]  # fmt: skip
        assert [m for m, _ in follower.maintained] == ["cnc-1"]
        assert ("maintenance" in {reason for _, reason in downs}) and "failure" not in {r for _, r in downs}
        (wear,) = [f for f in sim.faults if f.source == "injected"]
        assert not wear.failed and wear.end_ms is not None and wear.end_ms < FAILS_AT_MS
        follower.close()
