"""The schedule trigger: one request per DOWN or CRITICAL alarm, with the line's WIP and availability."""

from __future__ import annotations

import pytest
from fastavro.validation import validate

from processors.alarms import AlarmEngine, AlarmRules
from processors.base import Record, derived_id
from processors.schedule_trigger import ScheduleTrigger, ScheduleTriggerConfig
from producers.records import EventMapper
from schemas.loader import load_schema
from sim import Simulator, load_factory
from tests.unit.processors.fleet import Fleet
from twin.errors import SnapshotError

T0 = 1_764_000_000_000
LINE = ["cut", "bend", "pack"]
IDEAL = {"cut": 40.0, "bend": 30.0, "pack": 20.0}


def ms(seconds: float) -> int:
    return T0 + round(seconds * 1000)


def header(kind: str, machine: str, at: float, extra: object = "") -> Record:
    event_id = derived_id("test-event", kind, machine, at, extra)
    return {
        "event_id": event_id,
        "event_time": ms(at),
        "source": "test",
        "correlation_id": event_id,
        "line_id": "line-1",
        "machine_id": machine,
    }


def part(machine: str, at: float, part_id: str, cycle: float | None = None, good: bool = True) -> Record:
    return header("part", machine, at, part_id) | {
        "part_id": part_id,
        "cycle_time_s": cycle if cycle is not None else IDEAL[machine],
        "ideal_cycle_time_s": IDEAL[machine],
        "good": good,
        "scrap_reason": None if good else "crack",
    }


def state(machine: str, at: float, value: str, reason: str = "") -> Record:
    return header("state", machine, at) | {"previous": None, "state": value, "reason": reason}


def alarm(machine: str, at: float, alarm_id: str, severity: str, status: str = "ACTIVE_UNACK") -> Record:
    return header("alarm", machine, at, alarm_id) | {
        "correlation_id": "anomaly-cause",
        "alarm_id": alarm_id,
        "alarm_type": "HighVibration",
        "severity": severity,
        "status": status,
    }


def run(trigger: ScheduleTrigger, items: list[tuple[str, Record]]) -> list[Record]:
    out = []
    for topic, record in items:
        for e in trigger.process_one(topic, record):
            assert e.topic == "schedule.requests" and e.key == e.record["line_id"]
            assert validate(e.record, load_schema("schedule_request").parsed, raise_errors=True, strict=True)
            out.append(e.record)
    return out


def flow(n_parts: int, start: float = 0) -> list[tuple[str, Record]]:
    """Parts p1..pn through cut -> bend -> pack, one station-step apart."""
    items = []
    for k in range(n_parts):
        t = start + k * 100
        items += [
            ("factory.production", part("cut", t, f"p{k}", cycle=44.0)),
            ("factory.production", part("bend", t + 10, f"p{k}", cycle=32.0)),
            ("factory.production", part("pack", t + 20, f"p{k}")),
        ]
    return items


def test_a_machine_going_down_asks_once_for_a_plan_of_the_work_in_progress() -> None:
    trigger = ScheduleTrigger("line-1", ScheduleTriggerConfig(horizon_s=1800, cycle_alpha=1.0))
    items = flow(3)
    # p10 finished at cut only, p11 at cut and bend, p12 scrapped at bend: two parts waiting.
    items += [
        ("factory.production", part("cut", 400, "p10", cycle=50.0)),
        ("factory.production", part("cut", 410, "p11")),
        ("factory.production", part("bend", 420, "p11")),
        ("factory.production", part("cut", 430, "p12")),
        ("factory.production", part("bend", 440, "p12", good=False)),
        ("factory.state", state("bend", 450, "RUNNING")),
    ]
    assert run(trigger, items) == []
    down = state("bend", 500, "DOWN", "breakdown")
    (request,) = run(trigger, [("factory.state", down)])
    assert request["trigger"] == "MACHINE_DOWN" and request["trigger_machine_id"] == "bend"
    assert (
        request["request_id"]
        == request["event_id"]
        == derived_id("schedule-request", "MACHINE_DOWN", "bend", down["event_id"])
    )
    assert request["correlation_id"] == down["correlation_id"] and request["event_time"] == ms(500)
    assert request["source"] == "processor:schedule-trigger" and request["horizon_s"] == 1800.0
    assert trigger.order() == LINE
    # Furthest along first; processing times are the latest observed cycles (alpha 1).
    assert [
        {k: j[k] for k in ("job_id", "priority", "due_time", "processing_time_s")} for j in request["jobs"]
    ] == [
        {"job_id": "p11", "priority": 2, "due_time": None, "processing_time_s": {"pack": 20.0}},
        {"job_id": "p10", "priority": 1, "due_time": None, "processing_time_s": {"bend": 30.0, "pack": 20.0}},
    ]
    # The stations ahead are a route: one operation per station, in flow order.
    assert request["jobs"][1]["operations"] == [
        {"operation_id": "bend", "processing_time_s": {"bend": 30.0}, "after": []},
        {"operation_id": "pack", "processing_time_s": {"pack": 20.0}, "after": []},
    ]
    assert request["machines"] == [
        {"machine_id": "cut", "available": True, "available_from": None, "family": None},
        {
            "machine_id": "bend",
            "available": False,
            "available_from": None,
            "family": None,
        },  # no repair seen yet
        {"machine_id": "pack", "available": True, "available_from": None, "family": None},
    ]
    # Still DOWN, another reason; then a replay of the same report: no second request.
    assert (
        run(trigger, [("factory.state", state("bend", 520, "DOWN", "maintenance")), ("factory.state", down)])
        == []
    )


def test_expected_repair_end_comes_from_the_observed_mean_time_to_repair() -> None:
    trigger = ScheduleTrigger("line-1", ScheduleTriggerConfig(line_order={"line-1": LINE}))
    items = [
        ("factory.state", state("bend", 0, "DOWN")),
        ("factory.state", state("bend", 100, "RUNNING")),
        ("factory.state", state("bend", 1000, "DOWN")),
        ("factory.state", state("bend", 1300, "RUNNING")),
        ("factory.state", state("bend", 2000, "DOWN")),
    ]
    requests = run(trigger, items)
    assert len(requests) == 3
    assert requests[-1]["machines"][1] == {
        "machine_id": "bend",
        "available": False,
        "available_from": ms(2000 + 200),
        "family": None,
    }
    # Another station with no repair of its own: the line's mean.
    (request,) = run(trigger, [("factory.state", state("pack", 2100, "DOWN"))])
    assert request["machines"][2] == {
        "machine_id": "pack",
        "available": False,
        "available_from": ms(2100 + 200),
        "family": None,
    }
    # Repair overrunning: expected to end now at the earliest.
    assert request["machines"][1]["available_from"] == ms(2200)
    (late,) = run(trigger, [("factory.state", state("cut", 2500, "DOWN"))])
    assert late["machines"][1]["available_from"] == ms(2500)


def test_a_critical_alarm_asks_once_and_not_again_when_it_escalates_or_is_acknowledged() -> None:
    trigger = ScheduleTrigger("line-1", ScheduleTriggerConfig(line_order={"line-1": LINE}, backlog=2))
    items = [
        ("twin.alarms", alarm("cut", 10, "a1", "MAJOR")),
        ("twin.alarms", alarm("cut", 20, "a1", "CRITICAL")),
        ("twin.alarms", alarm("cut", 30, "a1", "CRITICAL", "ACTIVE_ACK")),
        ("twin.alarms", alarm("cut", 40, "a1", "CRITICAL", "CLEARED_ACK")),
    ]
    (request,) = run(trigger, [*flow(1), *items])
    assert request["trigger"] == "CRITICAL_ALARM" and request["trigger_machine_id"] == "cut"
    assert request["correlation_id"] == "anomaly-cause"  # the alarm's cause chain goes on
    assert request["event_time"] == ms(20)
    assert [j["job_id"] for j in request["jobs"]] == ["line-1:backlog-1", "line-1:backlog-2"]
    assert request["jobs"][0]["processing_time_s"] == pytest.approx({"cut": 44.0, "bend": 32.0, "pack": 20.0})
    # A new CRITICAL alarm is a new trigger.
    assert len(run(trigger, [("twin.alarms", alarm("cut", 50, "a2", "CRITICAL"))])) == 1


def test_a_critical_alarm_about_a_stop_already_reported_is_the_same_incident() -> None:
    trigger = ScheduleTrigger("line-1")
    items = [
        ("factory.state", state("bend", 0, "DOWN", "jam")),
        ("twin.alarms", alarm("bend", 600, "down-alarm", "CRITICAL")),
    ]
    assert [r["trigger"] for r in run(trigger, items)] == ["MACHINE_DOWN"]
    assert trigger.stats["critical_while_down"] == 1


def test_snapshot_and_restore_give_the_same_requests() -> None:
    items = [
        *flow(4),
        ("factory.production", part("cut", 500, "p9")),
        ("factory.state", state("bend", 510, "DOWN")),
    ]
    items += [("factory.state", state("bend", 600, "RUNNING")), ("factory.state", state("pack", 700, "DOWN"))]
    whole = run(ScheduleTrigger("line-1"), items)
    first = ScheduleTrigger("line-1")
    before = run(first, items[:13])
    second = ScheduleTrigger("line-1")
    second.restore(first.snapshot())
    assert second.snapshot() == first.snapshot()
    assert before + run(second, items[13:]) == whole
    assert len(whole) == 2
    with pytest.raises(SnapshotError):
        second.restore(b"[]")


def test_on_the_simulated_line_the_jam_gives_one_request_with_the_line_in_order() -> None:
    sim = Simulator(load_factory(), seed=1, start_time_ms=T0)
    mapper = EventMapper(seed=1)
    rules = AlarmRules.default()
    engine = Fleet(lambda machine: AlarmEngine(machine, rules))
    trigger = ScheduleTrigger("line-1")
    requests = []
    for event in sim.run(until_ms=T0 + 7_200_000):
        o = mapper.map(event)
        alarms = engine.process_one(o.topic, o.record) if o.topic != "factory.production" else []
        if o.topic != "factory.telemetry":
            requests += run(trigger, [(o.topic, o.record)])
        requests += run(trigger, [("twin.alarms", a.record) for a in alarms])
    assert [(r["trigger"], r["trigger_machine_id"], r["event_time"]) for r in requests] == [
        ("MACHINE_DOWN", "press-1", ms(3300))
    ]
    (request,) = requests
    assert [m["machine_id"] for m in request["machines"]] == ["cnc-1", "press-1", "weld-1", "paint-1", "qc-1"]
    assert [m["available"] for m in request["machines"]] == [True, False, True, True, True]
    assert 5 <= len(request["jobs"]) <= 40  # the buffers' contents, not the whole history
    assert all("press-1" not in j["processing_time_s"] or j["priority"] <= 1 for j in request["jobs"])
    assert request["jobs"][0]["processing_time_s"].keys() <= {"paint-1", "qc-1"}


def rul(machine: str, at: float, life: float, correlation: str = "wear-root") -> Record:
    return header("rul", machine, at) | {
        "correlation_id": correlation,
        "component": "bearing",
        "rul_s": life,
        "rul_low_s": life / 2,
        "rul_high_s": life * 2,
        "band": 0.8,
        "capped": False,
        "model_version": "m",
        "contributing": [],
        "observed_event_id": derived_id("t", machine, at),
    }


def test_a_short_remaining_life_asks_once_for_a_maintenance_window_due_before_the_failure() -> None:
    trigger = ScheduleTrigger("line-1", ScheduleTriggerConfig(line_order={"line-1": LINE}, cycle_alpha=1.0))
    assert run(trigger, [*flow(2), ("twin.maintenance", rul("bend", 300, 5000))]) == []  # beyond the horizon
    # Under the horizon, but a trend only once it held 5 minutes (one dip that recovers asks nothing).
    assert (
        run(
            trigger,
            [("twin.maintenance", rul("bend", 310, 3000)), ("twin.maintenance", rul("bend", 330, 4000))],
        )
        == []
    )
    assert run(trigger, [("twin.maintenance", rul("bend", 100 + 300, 3000))]) == []
    (request,) = run(trigger, [("twin.maintenance", rul("bend", 100 + 300 + 300, 3000))])
    assert request["trigger"] == "MAINTENANCE" and request["trigger_machine_id"] == "bend"
    assert request["correlation_id"] == "wear-root"  # the estimate's, as its MaintenanceDue alarm
    assert request["objective"] == "weighted_tardiness"
    job = request["jobs"][0]
    assert job["job_id"] == "maintenance:bend:bearing" and job["due_time"] == ms(
        700 + 1500
    )  # the band's low end
    assert job["operations"] == [
        {"operation_id": "maintenance", "processing_time_s": {"bend": 1800.0}, "after": []}
    ]
    assert job["weight"] == 10.0
    # Still short: no second request; back above 1.5 x the horizon re-arms it.
    assert run(trigger, [("twin.maintenance", rul("bend", 720, 2500))]) == []
    assert run(trigger, [("twin.maintenance", rul("bend", 730, 6000))]) == []
    again = [("twin.maintenance", rul("bend", t, 3000, correlation="again")) for t in (740, 1040)]
    assert len(run(trigger, again)) == 1
    # Until it begins, every request of the line carries the window (a re-plan for a breakdown too).
    (down,) = run(trigger, [("factory.state", state("cut", 760, "DOWN", "breakdown"))])
    assert [j["job_id"] for j in down["jobs"]][:1] == ["maintenance:bend:bearing"]
    run(trigger, [("factory.state", state("cut", 770, "RUNNING", "repaired"))])
    # A maintenance stop re-arms it too, and its length becomes the next window's.
    run(trigger, [("factory.state", state("bend", 800, "DOWN", "maintenance"))])
    run(trigger, [("factory.state", state("bend", 1400, "RUNNING", "maintenance_done"))])
    (request,) = run(trigger, [("twin.maintenance", rul("bend", t, 1000)) for t in (1500, 1800)])
    assert request["jobs"][0]["processing_time_s"] == {"bend": 600.0}
    # The scheduler reads it: the window is an operation of its own on that machine, due in time.
    from processors.scheduling.formats import from_request

    instance = from_request(request)
    (maintenance,) = [j for j in instance.jobs if j.job_id.startswith("maintenance:")]
    assert maintenance.due_s == 500 and maintenance.operations[0].durations == {"bend": 600.0}
