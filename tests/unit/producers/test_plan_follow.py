"""Following a plan: machine sequences from a plan record, and the plan's correlation id on the
line's state and production events (telemetry stays its own root)."""

from __future__ import annotations

from producers.plans import maintenance_windows, sequences_of
from producers.records import EventMapper
from sim import Simulator, load_factory
from sim.dispatch import PlanPolicy
from twin.topics import PRODUCTION, STATE, TELEMETRY


def test_sequences_follow_planned_start_times_per_machine() -> None:
    plan = {"assignments": [
        {"job_id": "b", "machine_id": "m1", "start_time": 20, "end_time": 30},
        {"job_id": "a", "machine_id": "m1", "start_time": 10, "end_time": 20},
        {"job_id": "a", "machine_id": "m2", "start_time": 25, "end_time": 40},
    ]}  # fmt: skip
    assert sequences_of(plan) == {"m1": ["a", "b"], "m2": ["a"]}


def test_maintenance_windows_are_not_parts() -> None:
    plan = {"assignments": [
        {"job_id": "a", "machine_id": "m1", "start_time": 10_000, "end_time": 20_000},
        {"job_id": "maintenance:m1:bearing", "machine_id": "m1", "start_time": 20_000, "end_time": 620_000},
    ]}  # fmt: skip
    assert sequences_of(plan) == {"m1": ["a"]}
    assert maintenance_windows(plan) == [("m1", 20_000, 600.0)]


def test_events_after_a_plan_carry_its_correlation_id() -> None:
    sim = Simulator(load_factory(), seed=1)
    correlation: dict[str, str] = {}
    mapper = EventMapper(1, correlation=correlation)
    before = [mapper.map(e) for e in sim.step(120)]
    assert all(o.record["correlation_id"] == o.record["event_id"] for o in before)
    sim.set_policy("line-1", PlanPolicy({}, plan_id="p", correlation_id="cause-9"))
    correlation["line-1"] = "cause-9"
    after = [mapper.map(e) for e in sim.step(600)]
    line = [o for o in after if o.topic in (STATE, PRODUCTION) and o.record["line_id"] == "line-1"]
    assert line and all(o.record["correlation_id"] == "cause-9" for o in line)
    telemetry = [o for o in after if o.topic == TELEMETRY]
    assert telemetry and all(o.record["correlation_id"] == o.record["event_id"] for o in telemetry)
