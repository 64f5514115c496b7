"""Simulated annealing on the QAOA QUBO: same formulation, same decoding, same metrics."""

from __future__ import annotations

import numpy as np
import pytest

from processors.scheduling import base
from processors.scheduling.anneal import SaSolver, bqm_of
from processors.scheduling.evaluate import check
from processors.scheduling.model import Budget, Instance, Status
from processors.scheduling.qubo import build
from tests.unit.processors.scheduling.sched_instances import JS22, P33


def test_sa_returns_a_feasible_plan_with_qaoa_comparable_metrics() -> None:
    result = SaSolver().solve(P33, Budget(seed=3, evaluations=50))
    assert result.status is Status.FEASIBLE and check(P33, result.schedule or []) == []
    m = result.metrics
    assert m["reads"] == m["evaluations"] == 50 and m["qubits"] == 9
    for key in (
        "p_feasible",
        "p_optimal",
        "p_ground",
        "approx_ratio_best",
        "approx_ratio_expected",
        "tts99_s",
    ):
        assert key in m
    assert m["optimum"] == 3.0 and result.objective is not None and result.objective >= 3.0
    assert result.note.startswith("assignment formulation, 9 variables")
    assert result.backend == "dwave-samplers"


def test_sa_is_seeded() -> None:
    a = SaSolver(sweeps=50).solve(P33, Budget(seed=9, evaluations=20)).metrics
    b = SaSolver(sweeps=50).solve(P33, Budget(seed=9, evaluations=20)).metrics
    assert {k: v for k, v in a.items() if k != "tts99_s"} == {k: v for k, v in b.items() if k != "tts99_s"}


def test_sa_on_the_time_indexed_job_shop() -> None:
    result = SaSolver(horizon=5).solve(JS22, Budget(seed=1, evaluations=30))
    assert result.ok and check(JS22, result.schedule or []) == []
    assert result.note.startswith("time-indexed formulation, 12 variables")
    assert result.metrics["horizon"] == 5.0


@pytest.mark.parametrize("inst", [P33, JS22], ids=["assignment", "time-indexed"])
def test_bqm_has_the_qubo_energies(inst: Instance) -> None:
    prob = build(inst, "assignment" if inst is P33 else "time-indexed", horizon=None if inst is P33 else 5)
    bqm = bqm_of(prob)
    rng = np.random.default_rng(0)
    for _ in range(30):
        x = rng.integers(0, 2, prob.num_qubits)
        assert bqm.energy({i: int(v) for i, v in enumerate(x)}) == pytest.approx(prob.energy(x))


def test_nothing_to_decide_and_too_big_are_unsupported() -> None:
    frac = Instance.build("frac", {"a": [{"m1": 1.5}, {"m2": 1.0}]})
    assert SaSolver().solve(frac, Budget()).status is Status.UNSUPPORTED
    result = SaSolver(max_variables=5).solve(P33, Budget())
    assert result.status is Status.UNSUPPORTED and "needs 9 variables" in result.note


def test_registered_as_sa() -> None:
    assert isinstance(base._FACTORIES["sa"](), SaSolver)
