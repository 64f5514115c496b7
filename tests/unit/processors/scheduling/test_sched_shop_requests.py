"""Requests from the shop line: the trigger, told the layout's stages, asks to re-plan parts with
their families and due dates over parallel machines, with the setups it learnt; CP-SAT answers
with a feasible plan that beats first-come-first-served on tardiness."""

from __future__ import annotations

from typing import Any

from processors.schedule_trigger import ScheduleTrigger, ScheduleTriggerConfig
from processors.scheduling.base import make_solver
from processors.scheduling.evaluate import check
from processors.scheduling.formats import from_request
from processors.scheduling.model import Budget
from producers.records import EventMapper
from sim import Simulator, load_factory, plant_of
from sim.actions import StartMaintenance
from twin.topics import PRODUCTION, SCHEDULE_REQUESTS, STATE


def shop_request() -> dict[str, Any]:
    layout = load_factory("job-shop")
    plant = plant_of(layout)
    trigger = ScheduleTrigger(
        "shop-1", ScheduleTriggerConfig(line_order=plant.line_order(), line_stages=plant.line_stages())
    )
    sim = Simulator(layout, seed=4)
    mapper = EventMapper(4)

    def feed(events: list[Any]) -> list[dict[str, Any]]:
        out = []
        for event in events:
            o = mapper.map(event)
            if o.topic in (STATE, PRODUCTION):
                out += [
                    e.record for e in trigger.process_one(o.topic, o.record) if e.topic == SCHEDULE_REQUESTS
                ]
        return out

    feed(sim.step(2 * 3600))
    sim.act(StartMaintenance("mill-1", 1800))
    requests = feed(sim.step(1))
    assert [r["trigger_machine_id"] for r in requests] == ["mill-1"]
    return requests[0]


def test_a_shop_request_has_stages_families_due_dates_and_setups() -> None:
    request = shop_request()
    ops = [op for job in request["jobs"] for op in job["operations"]]
    assert any(set(op["processing_time_s"]) == {"mill-1", "mill-2"} for op in ops)
    assert any(set(op["processing_time_s"]) == {"paint-1", "paint-2"} for op in ops)
    assert all(job["family"] in {"bracket", "housing", "flange"} for job in request["jobs"])
    assert all(job["due_time"] is not None for job in request["jobs"])
    assert request["objective"] == "weighted_tardiness"
    assert request["setups"] and all(s["setup_s"] > 0 for s in request["setups"])
    assert {m["machine_id"]: m["available"] for m in request["machines"]}["mill-1"] is False
    assert any(m["family"] for m in request["machines"])


def test_cpsat_plans_the_shop_request_better_than_fifo() -> None:
    inst = from_request(shop_request())
    assert inst.is_flexible and inst.setups
    cpsat = make_solver("cpsat").solve(inst, Budget(time_limit_s=5))
    fifo = make_solver("fifo").solve(inst, Budget())
    assert cpsat.ok and cpsat.schedule is not None and check(inst, cpsat.schedule) == []
    assert cpsat.objective is not None and fifo.objective is not None
    assert cpsat.objective <= fifo.objective
