"""The QAOA solver: plans that pass the checker, honest metrics, UNSUPPORTED for what does not fit,
clear configuration errors, device-shaped runs on a fake IBM backend, and circuit drawings."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from processors.scheduling import base
from processors.scheduling.evaluate import check
from processors.scheduling.model import Budget, Instance, Status
from processors.scheduling.quantum import (
    QaoaSolver,
    QuantumConfigError,
    draw_circuit,
    final_params,
    qaoa_circuit,
)
from tests.unit.processors.scheduling.sched_instances import JS22, P22, P33

METRICS = {
    "qubits",
    "depth",
    "reps",
    "shots",
    "evaluations",
    "circuit_samples",
    "p_feasible",
    "p_optimal",
    "p_ground",
    "optimum",
    "approx_ratio_best",
    "approx_ratio_expected",
    "tts99_s",
    "repaired",
}


def brute_force_makespan(inst: Instance) -> float:
    ops = inst.operations
    best = math.inf
    for choice in itertools.product(*(list(op.durations) for op in ops)):
        load = dict.fromkeys(inst.machines, 0.0)
        for op, m in zip(ops, choice, strict=True):
            load[m] += op.durations[m]
        best = min(best, max(load.values()))
    return best


def test_qaoa_on_3x3_parallel_machines_reaches_the_brute_force_optimum() -> None:
    result = QaoaSolver(backend="fast").solve(P33, Budget(seed=1, evaluations=60, time_limit_s=120))
    assert result.status is Status.FEASIBLE and result.schedule is not None
    assert check(P33, result.schedule) == []
    m = result.metrics
    assert set(m) >= METRICS
    assert all(isinstance(v, float) for v in m.values())
    assert m["qubits"] == 9 and m["shots"] == 1024 and m["reps"] == 1
    assert 1 <= m["evaluations"] <= 60 and m["circuit_samples"] == (m["evaluations"] + 1) * 1024
    assert m["optimum"] == brute_force_makespan(P33) == 3.0
    assert m["p_optimal"] > 0  # with this seed; then the best sample is an optimal plan
    assert result.objective == m["optimum"] and m["approx_ratio_best"] == 1.0
    assert 0 < m["approx_ratio_expected"] <= 1 and 0 < m["p_feasible"] <= 1
    assert 0 < m["tts99_s"] < math.inf  # p_optimal > 0
    assert result.backend == "fast" and result.note.startswith("assignment formulation, 9 qubits")
    # The circuit at the final angles, for drawing.
    params = final_params(result)
    assert len(params) == 2 and params == [m["beta_0"], m["gamma_0"]]
    assert qaoa_circuit(P33, 1, params).num_parameters == 0


def test_reference_and_aer_backends_solve_too() -> None:
    for backend in ("reference", "aer"):
        result = QaoaSolver(backend=backend).solve(P22, Budget(seed=2, evaluations=15))
        assert result.ok and check(P22, result.schedule or []) == [], backend
        assert result.backend == backend and result.metrics["qubits"] == 4


def test_time_indexed_job_shop_plan_passes_the_checker() -> None:
    result = QaoaSolver(reps=2, max_qubits=12).solve(JS22, Budget(seed=0, evaluations=30))
    assert result.ok and check(JS22, result.schedule or []) == []
    assert result.note.startswith("time-indexed formulation")
    assert result.metrics["optimum"] == 3.0 and result.metrics["horizon"] == 3.0


def test_oversize_instance_is_unsupported_with_the_qubit_count() -> None:
    big = Instance.build("big", {f"j{i}": [{"m1": 3, "m2": 2, "m3": 4}] for i in range(12)})
    result = QaoaSolver(max_qubits=20).solve(big, Budget())
    assert result.status is Status.UNSUPPORTED and result.schedule is None
    assert "needs 36 qubits, budget 20" in result.note


def test_nothing_to_decide_is_unsupported() -> None:
    frac = Instance.build("frac", {"a": [{"m1": 1.5}, {"m2": 1.0}]})
    result = QaoaSolver().solve(frac, Budget())
    assert result.status is Status.UNSUPPORTED and "whole-second" in result.note


def test_time_limit_stops_the_optimizer_but_still_answers() -> None:
    result = QaoaSolver().solve(P33, Budget(seed=1, evaluations=100, time_limit_s=0.0))
    assert result.ok and check(P33, result.schedule or []) == []
    assert result.metrics["stopped_early"] == 1.0 and result.metrics["evaluations"] == 1.0


def test_ibm_without_token_is_a_clear_config_error() -> None:
    with pytest.raises(QuantumConfigError, match="TWIN_SCHEDULER__IBM_TOKEN"):
        QaoaSolver(backend="ibm")
    with pytest.raises(QuantumConfigError, match="unknown QAOA backend 'qpu'"):
        QaoaSolver(backend="qpu")
    with pytest.raises(QuantumConfigError, match="unknown fake backend 'FakeNowhere'"):
        QaoaSolver(backend="ibm-fake:FakeNowhere")


@pytest.mark.slow
def test_fake_ibm_backend_runs_a_transpiled_noisy_circuit() -> None:
    result = QaoaSolver(backend="ibm-fake:FakeManilaV2").solve(P22, Budget(seed=1, evaluations=8))
    assert result.ok and check(P22, result.schedule or []) == []
    m = result.metrics
    assert m["transpiled_depth"] >= m["depth"] and m["two_qubit_gates"] >= 1
    assert result.backend == "ibm-fake:FakeManilaV2 (fake_manila)"


def test_fake_backend_too_small_is_unsupported() -> None:
    result = QaoaSolver(backend="ibm-fake:FakeManilaV2").solve(P33, Budget())
    assert result.status is Status.UNSUPPORTED and "needs 9 qubits" in result.note


def test_circuit_for_drawing(tmp_path: Path) -> None:
    circuit = qaoa_circuit(P22, reps=2)
    assert circuit.num_qubits == 4 and circuit.num_parameters == 4
    assert {"h", "rx", "measure"} <= set(circuit.count_ops())
    bound = qaoa_circuit(P22, reps=2, params=[0.1, 0.2, 0.3, 0.4])
    assert bound.num_parameters == 0
    for name in ("c.svg", "c.png"):
        out = draw_circuit(bound, tmp_path / name)
        assert out.stat().st_size > 1000


def test_registered_as_qaoa() -> None:
    assert "qaoa" in base._FACTORIES
    assert isinstance(base._FACTORIES["qaoa"](), QaoaSolver)


def test_a_field_that_cancels_is_exactly_zero_on_the_shipped_job_shop() -> None:
    """js3x2's time-indexed QUBO has a qubit whose Ising field cancels: as a -2e-16 float residue it
    became a constant RZ angle qiskit could not hash (OverflowError inside qiskit-optimization)."""
    from processors.scheduling.formats import builtin_instance

    inst = builtin_instance("js3x2")
    result = QaoaSolver(max_qubits=16).solve(inst, Budget(time_limit_s=20, seed=1, evaluations=10))
    assert result.status is Status.FEASIBLE and result.objective == 3.0, result.note
    assert "time-indexed" in result.note and result.metrics["qubits"] == 12
