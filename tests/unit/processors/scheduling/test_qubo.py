"""QUBO formulations: what they contain, that their energies and ground states mean what the
docstring says, and that decoding (with repair) always yields checked plans."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from processors.scheduling.evaluate import check, objective
from processors.scheduling.model import Instance, Job, Objective, Operation
from processors.scheduling.qubo import (
    FormulationError,
    build,
    choose_formulation,
    default_horizon,
    qubit_count,
    sample_stats,
    time_indexed_reason,
    tts99,
)
from tests.unit.processors.scheduling.sched_instances import JS22, P33, P43


def brute_force_makespan(inst: Instance) -> float:
    """Parallel machines: the least max load over every assignment."""
    ops = inst.operations
    best = float("inf")
    for choice in itertools.product(*(list(op.durations) for op in ops)):
        load = dict.fromkeys(inst.machines, 0.0)
        for op, m in zip(ops, choice, strict=True):
            load[m] += op.durations[m]
        best = min(best, max(load.values()))
    return best


def bits(k: int, n: int) -> list[int]:
    return [(k >> i) & 1 for i in range(n)]


@pytest.mark.parametrize("inst", [P33, P43], ids=["3x3", "4x3"])
def test_assignment_qubo_optimum_is_the_brute_force_makespan(inst: Instance) -> None:
    prob = build(inst, "assignment")
    assert prob.num_qubits == qubit_count(inst, "assignment") == 3 * len(inst.jobs)
    assert len(prob.groups) == len(inst.jobs)
    assert prob.optimum() == brute_force_makespan(inst)


@pytest.mark.parametrize("inst", [P33, JS22], ids=["assignment", "time-indexed"])
def test_enumerated_energies_are_the_qubo_and_ground_states_are_feasible(inst: Instance) -> None:
    prob = build(inst, "assignment" if inst is P33 else "time-indexed", horizon=None if inst is P33 else 5)
    n = prob.num_qubits
    energies = prob.energies()
    assert energies.shape == (1 << n,)
    for k in np.random.default_rng(1).integers(0, 1 << n, 40):
        assert energies[k] == pytest.approx(prob.energy(bits(int(k), n)))
    ground = np.flatnonzero(energies <= energies.min() + 1e-9)
    for k in ground:
        decoded = prob.decode(bits(int(k), n))
        assert decoded.feasible and check(inst, decoded.schedule) == []


def test_assignment_objective_is_the_sum_of_squared_loads() -> None:
    prob = build(P33, "assignment")
    x = [1, 0, 0, 0, 0, 1, 0, 1, 0]  # a->m1 (3), b->m3 (3), c->m2 (3)
    assert prob.program.objective.evaluate(np.array(x, dtype=float)) == 27.0
    assert prob.energy(x) == 27.0  # feasible: no penalty
    assert prob.energy([1, 1, 0, 0, 0, 1, 0, 1, 0]) > prob.penalty


def test_fixed_operations_need_no_qubit_and_availability_counts() -> None:
    inst = Instance.build(
        "mixed",
        {"a": [{"m1": 3}], "b": [{"m1": 2, "m2": 2}]},
        available_from={"m2": 4.0},
    )
    prob = build(inst, "assignment")
    assert prob.variables == [("b/0", "m1"), ("b/0", "m2")]
    assert prob.fixed == {"a/0": "m1"}
    # b on m1 ends at 5 (after a), on m2 at 6 (m2 free from 4): the QUBO prefers m1 (25+0+16 < 9+36).
    assert prob.energy([1, 0]) < prob.energy([0, 1])
    assert prob.decode([1, 0]).objective == 5.0


def test_violated_one_hot_is_repaired_deterministically() -> None:
    prob = build(P33, "assignment")
    none = prob.decode([0] * 9)
    assert none.repaired and check(P33, none.schedule) == []
    # Two machines chosen for "a": the repair keeps one of the two.
    two = prob.decode([1, 1, 0, 0, 0, 1, 0, 1, 0])
    assert two.repaired and check(P33, two.schedule) == []
    assert next(s.machine for s in two.schedule if s.key == "a/0") in {"m1", "m2"}
    assert prob.decode([0] * 9) == none


def test_time_indexed_decodes_the_known_optimum_of_a_2x2_job_shop() -> None:
    prob = build(JS22, "time-indexed", horizon=5)
    assert prob.horizon == 5
    assert prob.num_qubits == qubit_count(JS22, "time-indexed", horizon=5) == 12
    # Optimal plan: j1/0 at 0 on m1, j2/0 at 0 on m2, j1/1 at 2 on m2, j2/1 at 2 on m1: makespan 3.
    starts = {"j1/0": 0, "j2/0": 0, "j1/1": 2, "j2/1": 2}
    x = [1 if starts[k] == t else 0 for k, t in prob.variables]
    decoded = prob.decode(x)
    assert decoded.feasible and decoded.objective == 3.0
    assert check(JS22, decoded.schedule) == []
    assert prob.optimum() == 3.0
    assert prob.energy(x) == prob.energies().min()


def test_time_indexed_clash_is_repaired_by_left_shift() -> None:
    prob = build(JS22, "time-indexed", horizon=5)
    # j1/1 and j2/0 both on m2 from t=2 and t=1: they overlap; starts are decoded but not feasible.
    starts = {"j1/0": 0, "j2/0": 1, "j1/1": 2, "j2/1": 3}
    x = [1 if starts[k] == t else 0 for k, t in prob.variables]
    decoded = prob.decode(x)
    assert decoded.repaired and check(JS22, decoded.schedule) == []
    # Precedence broken: j1/1 before j1/0 ends.
    starts = {"j1/0": 2, "j2/0": 0, "j1/1": 2, "j2/1": 2}
    x = [1 if starts.get(k) == t else 0 for k, t in prob.variables]
    assert prob.decode(x).repaired


def test_time_indexed_weighted_tardiness_is_exact() -> None:
    inst = Instance.build(
        "wt", {"j1": [{"m1": 2}, {"m2": 1}], "j2": [{"m2": 2}, {"m1": 1}]}, due={"j1": 2.0, "j2": 4.0}
    ).with_objective(Objective.WEIGHTED_TARDINESS)
    prob = build(inst, "time-indexed", horizon=5)
    n = prob.num_qubits
    for k in range(1 << n):
        x = bits(k, n)
        d = prob.decode(x)
        if d.feasible:
            # On a feasible sample the QUBO is the tardiness itself.
            assert prob.energy(x) == pytest.approx(objective(inst, d.schedule))
    assert prob.optimum() == 1.0  # j1 ends at 3 at the earliest


def test_formulation_choice_and_reasons() -> None:
    assert choose_formulation(JS22, 20) == ("time-indexed", 4, "")
    kind, n, why = choose_formulation(P33, 20)
    assert (kind, n) == ("assignment", 9) and "flexible" in why
    kind, n, why = choose_formulation(JS22, 3)
    assert (kind, n) == ("assignment", 0) and why == "time-indexed needs 4 qubits"
    assert choose_formulation(P33, 20, "assignment") == ("assignment", 9, "")
    with pytest.raises(FormulationError, match="flexible"):
        qubit_count(P33, "time-indexed")
    frac = Instance.build("frac", {"a": [{"m1": 1.5}]})
    assert "whole-second" in (time_indexed_reason(frac) or "")
    setups = Instance.build("setup", {"a": [{"m1": 1}], "b": [{"m1": 1}]}, families={"a": "x", "b": "y"})
    setups = Instance(setups.name, setups.jobs, setups.machines, setups=({("x", "y"): 2.0}))
    assert "setups" in (time_indexed_reason(setups) or "")


def test_default_horizon_holds_a_feasible_plan_and_short_ones_are_refused() -> None:
    assert default_horizon(JS22) == 3
    with pytest.raises(FormulationError, match="shorter"):
        build(JS22, "time-indexed", horizon=2)


def test_release_and_cross_job_precedence_shape_the_windows() -> None:
    ops_a = (Operation("a", "0", 0, {"m1": 1.0}),)
    ops_b = (Operation("b", "0", 0, {"m2": 1.0}, after=("a/0",)),)
    inst = Instance("x", (Job("a", ops_a, release_s=2.0), Job("b", ops_b)), ("m1", "m2"))
    prob = build(inst, "time-indexed", horizon=4)
    assert [t for k, t in prob.variables if k == "a/0"] == [2]
    assert [t for k, t in prob.variables if k == "b/0"] == [3]


def test_sample_stats_definitions() -> None:
    prob = build(P33, "assignment")
    optimal = [1, 0, 0, 0, 0, 1, 0, 1, 0]  # makespan 3
    worse = [1, 0, 0, 1, 0, 0, 0, 0, 1]  # a,b on m1 (8), c on m3 (5)
    broken = [0] * 9
    stats = sample_stats(prob, [(optimal, 0.25), (worse, 0.5), (broken, 0.25)], wall_s=2.0)
    m = stats.metrics
    assert stats.best.feasible and stats.best.objective == 3.0
    assert m["p_feasible"] == 0.75 and m["p_optimal"] == 0.25 and m["optimum"] == 3.0
    assert m["approx_ratio_best"] == 1.0
    expected = 0.25 * 3 + 0.5 * 8 + 0.25 * prob.decode(broken).objective
    assert m["approx_ratio_expected"] == pytest.approx(3.0 / expected)
    assert m["tts99_s"] == pytest.approx(2.0 * np.log(0.01) / np.log(0.75))
    assert m["repaired"] == 0.0 and m["p_ground"] == 0.25
    assert tts99(1.0, 0.0) == float("inf") and tts99(1.0, 0.995) == 1.0
