"""The fast QAOA sampler against Qiskit's reference simulators: exact probabilities, sampled
distributions within sampling error, Qiskit's bit order and result shapes, and clear refusals."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister  # type: ignore[import-untyped]
from qiskit.circuit import Parameter  # type: ignore[import-untyped]
from qiskit.circuit.library import PauliEvolutionGate  # type: ignore[import-untyped]
from qiskit.primitives import StatevectorSampler  # type: ignore[import-untyped]
from qiskit.quantum_info import SparsePauliOp, Statevector  # type: ignore[import-untyped]
from qiskit_aer.primitives import SamplerV2 as AerSampler  # type: ignore[import-untyped]

from processors.scheduling.fast_sampler import FastSampler, UnsupportedCircuitError
from processors.scheduling.model import Instance
from processors.scheduling.quantum import qaoa_circuit
from processors.scheduling.qubo import build
from tests.unit.processors.scheduling.sched_instances import P33, P43


def qaoa(inst: Instance, reps: int) -> QuantumCircuit:
    return qaoa_circuit(build(inst, "assignment"), reps)


def exact(circuit: QuantumCircuit, values: list[float]) -> np.ndarray:
    bound = circuit.remove_final_measurements(inplace=False).assign_parameters(values)
    return np.asarray(Statevector(bound.decompose(reps=2)).probabilities())


def counts_vector(counts: Mapping[str, int], n: int) -> np.ndarray:
    out = np.zeros(1 << n)
    for key, c in counts.items():
        out[int(key, 2)] = c
    return np.asarray(out / out.sum())


def tv_bound(p: np.ndarray, shots: int, samples: int = 1) -> float:
    """A bound on the total variation distance between ``samples`` empirical distributions of
    ``shots`` draws from ``p`` and ``p`` (or each other, samples=2) that fails with probability
    < 1e-6: the mean, 0.5 * sum sqrt(samples * p(1-p)/shots) (Jensen), plus McDiarmid's deviation
    (one shot moves the distance by at most 1/shots)."""
    mean = 0.5 * float(np.sum(np.sqrt(samples * p * (1 - p) / shots)))
    return mean + math.sqrt(samples * math.log(1e6) / (2 * shots))


@pytest.mark.parametrize("inst", [P33, P43], ids=["3x3", "4x3"])
@pytest.mark.parametrize("reps", [1, 2])
@pytest.mark.parametrize("precision", ["single", "double"])
def test_exact_probabilities_match_statevector(inst: Instance, reps: int, precision: str) -> None:
    circuit = qaoa(inst, reps)
    values = list(np.random.default_rng(7).uniform(-1.5, 1.5, circuit.num_parameters))
    ours = FastSampler(precision=precision).probabilities(circuit, values)  # type: ignore[arg-type]
    tol = 1e-6 if precision == "single" else 1e-12
    assert np.abs(ours - exact(circuit, values)).max() < tol


@pytest.mark.parametrize("inst", [P33, P43], ids=["3x3", "4x3"])
def test_sampled_distributions_agree_within_sampling_error(inst: Instance) -> None:
    """Ours, Qiskit's reference and Aer each sample within the shot-noise bound of the exact
    distribution, and ours and the reference within the bound of each other."""
    circuit = qaoa(inst, 1)
    values = [0.6, 1.1]
    shots = 4000
    p = exact(circuit, values)
    n = circuit.num_qubits
    got = {
        name: counts_vector(
            sampler.run([(circuit, values)], shots=shots).result()[0].data.meas.get_counts(), n
        )
        for name, sampler in {
            "fast": FastSampler(seed=3),
            "reference": StatevectorSampler(seed=3),
            "aer": AerSampler(seed=3),
        }.items()
    }
    for name, q in got.items():
        assert 0.5 * np.abs(q - p).sum() < tv_bound(p, shots), name
    assert 0.5 * np.abs(got["fast"] - got["reference"]).sum() < tv_bound(p, shots, samples=2)


def test_bit_order_and_registers_match_statevector_sampler() -> None:
    """Deterministic outcomes, several registers, measured out of order, one bit never measured."""
    qr = QuantumRegister(4)
    alpha, beta = ClassicalRegister(3, "alpha"), ClassicalRegister(2, "beta")
    qc = QuantumCircuit(qr, alpha, beta)
    qc.x(0)
    qc.x(3)
    qc.measure(0, alpha[2])
    qc.measure(1, alpha[0])
    qc.measure(3, alpha[1])
    qc.measure(3, beta[0])
    ours = FastSampler(seed=1).run([qc], shots=10).result()[0].data
    ref = StatevectorSampler(seed=1).run([qc], shots=10).result()[0].data
    assert ours.alpha.get_counts() == ref.alpha.get_counts() == {"110": 10}
    assert ours.beta.get_counts() == ref.beta.get_counts() == {"01": 10}
    assert ours.alpha.array.shape == ref.alpha.array.shape


def test_wide_register_packs_like_qiskit() -> None:
    """More than 8 bits: bytes big-endian, the register's last bit first."""
    qc = QuantumCircuit(11)
    for q in (0, 3, 8, 10):
        qc.x(q)
    qc.measure_all()
    ours = FastSampler(seed=1).run([qc], shots=4).result()[0].data.meas
    ref = StatevectorSampler(seed=1).run([qc], shots=4).result()[0].data.meas
    assert np.array_equal(ours.array, ref.array)
    assert ours.get_counts() == {"10100001001": 4}


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_parameter_arrays_broadcast_like_qiskit(shape: tuple[int, ...]) -> None:
    circuit = qaoa(P33, 1)
    values = np.random.default_rng(0).uniform(-1, 1, (*shape, circuit.num_parameters))
    ours = FastSampler(seed=2).run([(circuit, values)], shots=64).result()[0]
    ref = StatevectorSampler(seed=2).run([(circuit, values)], shots=64).result()[0]
    assert ours.data.shape == ref.data.shape == shape
    assert ours.data.meas.array.shape == ref.data.meas.array.shape
    assert ours.metadata["shots"] == 64
    for index in np.ndindex(shape):
        assert sum(ours.data.meas[index].get_counts().values()) == 64


def test_pub_shots_and_default_shots() -> None:
    circuit = qaoa(P33, 1)
    sampler = FastSampler(default_shots=100, seed=0)
    results = sampler.run([(circuit, [0.1, 0.2]), (circuit, [0.3, 0.4], 7)]).result()
    assert [r.data.meas.num_shots for r in results] == [100, 7]


def test_same_seed_same_samples_and_cache_is_reused() -> None:
    circuit = qaoa(P33, 2)
    sampler = FastSampler(seed=5)
    a = sampler.run([(circuit, [0.1, 0.2, 0.3, 0.4])]).result()[0].data.meas.get_counts()
    b = sampler.run([(circuit, [0.1, 0.2, 0.3, 0.4])]).result()[0].data.meas.get_counts()
    assert a == b
    assert sampler.program(circuit) is sampler.program(circuit)


def test_general_gates_are_simulated_exactly() -> None:
    """Gates off the fast path (CX, SWAP, CCX, RXX, U, controlled phases, Pauli evolutions) go
    through merged layers or dense matrices and still give the exact state."""
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(4)
    qc.h(0)
    qc.x(2)
    qc.ry(a, 1)
    qc.cx(0, 1)
    qc.t(1)
    qc.s(0)
    qc.rz(a * b, 3)
    qc.h(3)
    qc.crz(b, 3, 2)
    qc.cp(a, 0, 3)
    qc.swap(1, 2)
    qc.ccx(0, 1, 3)
    qc.rxx(b, 0, 2)
    qc.u(a, b, 0.3, 1)
    qc.cz(1, 2)
    qc.rzz(2 * a - 1, 0, 3)
    qc.append(PauliEvolutionGate(SparsePauliOp.from_list([("XIII", 0.3), ("IIYI", 0.5)]), time=a), range(4))
    qc.append(PauliEvolutionGate(SparsePauliOp.from_list([("ZZII", 0.3), ("IZIZ", 0.5)]), time=b), range(4))
    qc.sx(2)
    qc.measure_all()
    values = [0.7, -1.3]
    for precision, tol in (("single", 1e-6), ("double", 1e-12)):
        ours = FastSampler(precision=precision).probabilities(qc, values)  # type: ignore[arg-type]
        assert np.abs(ours - exact(qc, values)).max() < tol


def test_unsupported_instructions_are_refused_clearly() -> None:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.reset(1)
    qc.measure([0, 1], [0, 1])
    with pytest.raises(UnsupportedCircuitError, match="reset"):
        FastSampler().run([qc]).result()
    mid = QuantumCircuit(2, 2)
    mid.h(0)
    mid.measure(0, 0)
    mid.cx(0, 1)
    mid.measure(1, 1)
    with pytest.raises(UnsupportedCircuitError, match="mid-circuit"):
        FastSampler().run([mid]).result()
