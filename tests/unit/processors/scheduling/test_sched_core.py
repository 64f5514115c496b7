"""The scheduling core: instances from files and requests, the feasibility check, the rules, CP-SAT,
and one decision over several solvers."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from processors.scheduling import base
from processors.scheduling.cpsat import CpSatSolver
from processors.scheduling.decide import DecisionConfig, decide, plan_id, plan_record
from processors.scheduling.evaluate import Candidate, build_schedule, check, objective
from processors.scheduling.formats import (
    builtin_instance,
    builtin_optimum,
    from_request,
    load_instance,
    parse_jobshop,
)
from processors.scheduling.model import (
    Budget,
    Instance,
    InstanceError,
    Objective,
    Operation,
    ScheduledOp,
    SolveResult,
    Status,
)
from processors.scheduling.rules import RULES, make_rule
from twin.errors import ConfigError

T0 = 1_765_000_000_000


def test_standard_and_taillard_text_give_the_same_instance() -> None:
    standard = parse_jobshop("# comment\n2 3\n0 5 1 4 2 3\n2 2 0 6 1 1\n", "s")
    taillard = parse_jobshop("2 3\n5 4 3\n2 6 1\n1 2 3\n3 1 2\n", "t")
    assert [dict(o.durations) for o in standard.operations] == [
        dict(o.durations) for o in taillard.operations
    ]
    assert standard.machines == ("M0", "M1", "M2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2 2\n0 1 1 2\n", "expected 2 lines of 4 numbers"),
        ("1 2\n0 1 5 2\n", "machine numbers must be 0..1"),
        ("1 1\n0 x\n", "integers only"),
    ],
)
def test_malformed_job_shop_text_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InstanceError, match=message):
        parse_jobshop(text, "bad")


def test_every_shipped_instance_loads_with_its_published_size() -> None:
    from processors.scheduling.formats import _index

    for name, entry in _index().items():
        inst = builtin_instance(name)
        assert inst.size == f"{entry['jobs']}x{entry['machines']}"
    assert builtin_optimum("la01") == 666.0
    with pytest.raises(InstanceError, match="unknown instance 'zz'"):
        builtin_instance("zz")


def test_yaml_instance_with_families_setups_and_precedence_across_jobs(tmp_path: Path) -> None:
    path = tmp_path / "i.yaml"
    path.write_text(
        "objective: weighted_tardiness\n"
        "setups: {A: {B: 5}}\n"
        "initial_family: {m1: A}\n"
        "jobs:\n"
        "  - {id: a, family: A, due: 10, operations: [{id: cut, machines: {m1: 3, m2: 4}}]}\n"
        "  - {id: b, family: B, due: 20, weight: 2, operations: [{id: cut, machines: {m1: 2}, after: [a/cut]}]}\n"
    )
    inst = load_instance(path)
    assert inst.objective is Objective.WEIGHTED_TARDINESS and inst.setup("A", "B") == 5
    assert inst.job("b").operations[0].after == ("a/cut",)
    result = CpSatSolver().solve(inst, Budget(time_limit_s=5))
    assert result.status is Status.OPTIMAL and result.schedule is not None
    assert check(inst, result.schedule) == []
    # b needs a's end (3 on m1) and the A->B setup on m1: starts at 8, ends at 10, not late.
    assert result.objective == 0.0


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        ("[{id: a, operations: [{machines: {m1: -1}}]}]", "duration must be >= 0"),
        (
            "[{id: a, operations: [{id: x, machines: {m1: 1}, after: [b/y]}]}, {id: b, operations: [{id: y, machines: {m1: 1}, after: [a/x]}]}]",
            "precedences form a cycle: ",
        ),
        ("[{id: a, operations: [{machines: {m1: 1}, after: [nope]}]}]", "unknown operation 'a/nope'"),
    ],
)
def test_invalid_instances_fail_with_the_reason(tmp_path: Path, jobs: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"jobs: {jobs}\n")
    with pytest.raises(InstanceError, match=message):
        load_instance(path)


def test_a_file_with_a_wrong_field_is_one_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("jobs: [{id: a, operations: [{machine: {m1: 1}}]}]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: jobs\[0\].operations\[0\]"):
        load_instance(path)


def test_the_check_finds_each_kind_of_violation() -> None:
    inst = Instance.build(
        "t", {"a": [{"m1": 3.0}, {"m2": 2.0}], "b": [{"m1": 2.0}]}, available_from={"m2": 1.0}
    )
    good = [
        ScheduledOp("a/0", "a", "m1", 0, 3),
        ScheduledOp("a/1", "a", "m2", 3, 5),
        ScheduledOp("b/0", "b", "m1", 3, 5),
    ]
    assert check(inst, good) == []
    assert any("overlaps a/0" in p for p in check(inst, [*good[:2], ScheduledOp("b/0", "b", "m1", 2, 4)]))
    assert any(
        "before a/0 ends" in p for p in check(inst, [good[0], ScheduledOp("a/1", "a", "m2", 2, 4), good[2]])
    )
    assert any(
        "cannot do it" in p for p in check(inst, [good[0], good[1], ScheduledOp("b/0", "b", "m2", 5, 7)])
    )
    assert any("not scheduled" in p for p in check(inst, good[:2]))
    assert any("needs 2 s" in p for p in check(inst, [*good[:2], ScheduledOp("b/0", "b", "m1", 3, 4)]))
    early = Instance.build("t", {"a": [{"m2": 1.0}]}, available_from={"m2": 4.0})
    assert any("before m2 is available" in p for p in check(early, [ScheduledOp("a/0", "a", "m2", 0, 1)]))


def test_rules_give_feasible_deterministic_schedules_that_differ() -> None:
    inst = builtin_instance("la01")
    values = {}
    for rule in RULES:
        first = make_rule(rule).solve(inst, Budget())
        again = make_rule(rule).solve(inst, Budget())
        assert first.ok and first.schedule == again.schedule
        assert first.schedule is not None and check(inst, first.schedule) == []
        values[rule] = first.objective
    assert len(set(values.values())) > 1
    assert all(v is not None and v >= 666 for v in values.values())


def test_edd_serves_due_dates_first() -> None:
    inst = Instance.build(
        "t", {"late": [{"m": 5.0}], "soon": [{"m": 5.0}]}, due={"late": 100.0, "soon": 5.0}
    ).with_objective(Objective.WEIGHTED_TARDINESS)
    assert make_rule("edd").solve(inst, Budget()).objective == 0.0
    assert make_rule("fifo").solve(inst, Budget()).objective == 5.0


@pytest.mark.parametrize(("name", "optimum"), [("ft06", 55.0), ("la01", 666.0), ("la05", 593.0)])
def test_cpsat_proves_the_published_optimum(name: str, optimum: float) -> None:
    result = CpSatSolver().solve(builtin_instance(name), Budget(time_limit_s=20))
    assert result.status is Status.OPTIMAL
    assert result.objective == optimum == builtin_optimum(name) == result.bound


def test_cpsat_matches_brute_force_on_a_small_flexible_instance_with_setups() -> None:
    inst = Instance(
        "t",
        tuple(
            builtin_instance("pm3x3")
            .jobs[i]
            .__class__(j, builtin_instance("pm3x3").jobs[i].operations, family=f)
            for i, (j, f) in enumerate([("A", "x"), ("B", "y"), ("C", "x")])
        ),
        ("M1", "M2", "M3"),
        setups={("x", "y"): 2.0, ("y", "x"): 2.0},
        initial_family={"M1": "y", "M2": "y", "M3": "y"},
    )
    result = CpSatSolver().solve(inst, Budget(time_limit_s=5))
    assert result.status is Status.OPTIMAL and result.schedule is not None
    assert check(inst, result.schedule) == []
    # Brute force: every machine choice, every order on each machine, schedules built left to right.
    best = min(
        objective(inst, sched)
        for choice in itertools.product(*[list(op.durations) for op in inst.operations])
        for sched in [_serial(inst, dict(zip([o.key for o in inst.operations], choice, strict=True)))]
    )
    assert result.objective == best


def _serial(inst: Instance, assignment: dict[str, str]) -> list[ScheduledOp]:
    best: list[ScheduledOp] | None = None
    for order in itertools.permutations([op.key for op in inst.operations]):
        rank = {k: float(i) for i, k in enumerate(order)}

        def by_rank(op: Operation, c: Candidate, rank: dict[str, float] = rank) -> float:
            return rank[op.key]

        sched = build_schedule(inst, by_rank, assignment)
        if best is None or objective(inst, sched) < objective(inst, best):
            best = sched
    assert best is not None
    return best


def request(**overrides: Any) -> dict[str, Any]:
    base_record: dict[str, Any] = {
        "event_id": "00000000-0000-0000-0000-000000000001",
        "event_time": T0,
        "source": "processor:schedule-trigger",
        "correlation_id": "cause-1",
        "request_id": "00000000-0000-0000-0000-000000000001",
        "line_id": "line-1",
        "trigger": "MACHINE_DOWN",
        "trigger_machine_id": "bend",
        "jobs": [
            {
                "job_id": "p1",
                "priority": 1,
                "due_time": None,
                "processing_time_s": {"bend": 30.0, "pack": 20.0},
                "operations": [
                    {"operation_id": "bend", "processing_time_s": {"bend": 30.0}, "after": []},
                    {"operation_id": "pack", "processing_time_s": {"pack": 20.0}, "after": []},
                ],
                "weight": 1.0,
                "family": None,
            },
            {
                "job_id": "p2",
                "priority": 2,
                "due_time": T0 + 10_000,
                "processing_time_s": {"pack": 20.0},
                "operations": [],
                "weight": 1.0,
                "family": None,
            },
        ],
        "machines": [
            {"machine_id": "bend", "available": False, "available_from": T0 + 60_000, "family": None},
            {"machine_id": "pack", "available": True, "available_from": None, "family": None},
        ],
        "horizon_s": 3600.0,
        "setups": [],
        "objective": "makespan",
    }
    base_record.update(overrides)
    return base_record


def test_a_request_becomes_an_instance_in_seconds_from_its_time() -> None:
    inst = from_request(request())
    assert inst.available("bend") == 60.0 and inst.available("pack") == 0.0
    assert [op.key for op in inst.operations] == ["p1/bend", "p1/pack", "p2/0"]
    assert inst.job("p2").due_s == 10.0
    result = CpSatSolver().solve(inst, Budget(time_limit_s=5))
    # bend is back at 60 s: p1 bends 60-90 and packs 90-110; p2 packs first.
    assert result.objective == 110.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"machines": [{"machine_id": "pack", "available": True, "available_from": None, "family": None}]},
            "names unknown machine 'bend'",
        ),
        ({"objective": "profit"}, "unknown objective"),
    ],
)
def test_invalid_requests_say_why(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InstanceError, match=message):
        from_request(request(**change))


def test_a_machine_down_with_no_repair_estimate_is_planned_back_after_the_assumed_repair() -> None:
    down = request(machines=[
        {"machine_id": "bend", "available": False, "available_from": None, "family": None},
        {"machine_id": "pack", "available": True, "available_from": None, "family": None},
    ])  # fmt: skip
    assert from_request(down).available("bend") == 600.0
    assert from_request(down, unknown_repair_s=90).available("bend") == 90.0


def test_a_negative_duration_in_a_request_is_invalid() -> None:
    bad = request()
    bad["jobs"][1]["processing_time_s"] = {"pack": -5.0}
    with pytest.raises(InstanceError, match="duration must be >= 0"):
        from_request(bad)


class Broken:
    name = "broken"

    def solve(self, instance: Instance, budget: Budget) -> SolveResult:
        raise RuntimeError("solver bug")


class Slow:
    name = "slow"

    def solve(self, instance: Instance, budget: Budget) -> SolveResult:
        import time

        time.sleep(1.0)
        return SolveResult("slow", Status.INFEASIBLE)


def test_a_crashing_or_late_solver_never_loses_the_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    base.solver_names()
    monkeypatch.setitem(base._FACTORIES, "broken", Broken)
    monkeypatch.setitem(base._FACTORIES, "slow", Slow)
    inst = from_request(request())
    d = decide(inst, DecisionConfig(solvers=("broken", "slow", "fifo"), deadline_s=0.3))
    assert [r.status for r in d.results] == [Status.ERROR, Status.TIMEOUT, Status.FEASIBLE]
    assert "solver bug" in d.results[0].note and "deadline" in d.results[1].note
    assert d.chosen is not None and d.chosen.solver == "fifo"


def test_the_plan_record_keeps_the_correlation_and_compares_every_solver() -> None:
    inst = from_request(request())
    config = DecisionConfig(solvers=("cpsat", "fifo"), deadline_s=5, choose="prefer:fifo")
    d = decide(inst, config)
    record = plan_record(request(), inst, d, config.choose)
    assert record["solver"] == "fifo" and record["chosen_by"] == "prefer:fifo"
    assert record["correlation_id"] == "cause-1"
    assert record["plan_id"] == plan_id(request()["request_id"]) == record["event_id"]
    assert [c["solver"] for c in record["comparison"]] == ["cpsat", "fifo"]
    assert record["comparison"][0]["gap"] == 0.0 and record["bound"] == 110.0
    bend = [a for a in record["assignments"] if a["machine_id"] == "bend"]
    assert bend == [
        {
            "job_id": "p1",
            "machine_id": "bend",
            "start_time": T0 + 60_000,
            "end_time": T0 + 90_000,
            "operation_id": "bend",
            "setup_s": 0.0,
        }
    ]
    single = [a for a in record["assignments"] if a["job_id"] == "p2"]
    assert single[0]["operation_id"] == ""
    import fastavro

    from schemas.loader import load_schema

    fastavro.validation.validate(record, load_schema("schedule_plan").parsed, raise_errors=True)
