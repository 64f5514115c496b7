"""QAOA as a scheduling solver (registered as ``qaoa``), on a simulator or an IBM device.

The instance becomes a QUBO (``qubo.py``: time-indexed if it applies and fits the qubit budget,
else machine assignment), the QUBO is scaled so that its Ising form's largest coefficient is 1
(the argmin does not change; QAOA's angles then live on the same scale for every instance), and
qiskit-optimization 0.7 solves it: ``MinimumEigenOptimizer(QAOA(sampler, COBYLA, reps))``. The
sampler is the backend:

- ``fast``: ``FastSampler`` (ours, numpy, exploits the diagonal cost layer; exact statevector).
- ``reference``: Qiskit's ``StatevectorSampler`` (slow; the ground truth for the others).
- ``aer``: qiskit-aer's ``SamplerV2`` (statevector, noiseless).
- ``ibm``: qiskit-ibm-runtime's ``SamplerV2`` on a real device (needs ``ibm_token``; every objective
  evaluation is one job in the device's queue).
- ``ibm-fake:<FakeName>``: a ``qiskit_ibm_runtime.fake_provider`` device, simulated with its noise
  model by Aer, offline.

Device backends get ISA circuits: a preset pass manager (optimisation level 1) transpiles each
circuit once, inside a sampler wrapper, so the measured bits stay in the logical qubit order the
QUBO uses (QAOA's own ``pass_manager`` option re-maps the cost operator to physical qubits, which
does not match the measured register).

Budget: COBYLA gets ``budget.evaluations`` objective evaluations (default 100), each one sampler
run of ``shots`` shots; it is stopped early (``stopped_early`` = 1) when the next evaluation would
pass ``OPTIMIZER_SHARE`` of ``budget.time_limit_s``. The initial angles are a linear ramp
(annealing-like), so runs are deterministic given ``budget.seed`` (which seeds the sampler).

Every sample of the final distribution is decoded (``QuboProblem.decode``), checked and, if it
breaks a constraint, repaired; the plan returned is the best decoded one. Metrics (floats):

- ``qubits``, ``reps``, ``shots``, ``depth`` (the ansatz as sampled: H, RZZ, RZ, RX; measurements and
  barriers not counted), ``evaluations`` (objective evaluations made), ``circuit_samples``
  (``(evaluations + 1) * shots``: every shot drawn, the final distribution included);
- ``p_feasible``: probability mass of samples that satisfy every constraint unrepaired;
- ``optimum``: the best objective of an unrepaired plan over all one-hot assignments, by exhaustive
  enumeration (up to ``ENUMERATION_MAX_QUBITS`` qubits; otherwise it and the metrics below that need
  it are left out); ``p_optimal``: mass of unrepaired samples whose plan reaches it;
  ``p_ground``: mass on QUBO ground states (numpy enumeration of all 2^n energies);
- ``approx_ratio_best`` = optimum / best plan objective, ``approx_ratio_expected`` = optimum /
  expected plan objective over the distribution (repaired plans included): for minimisation, 1.0
  is best (0/0 counts as 1);
- ``tts99_s``: time to solution at 99% = wall time of the run x ln(0.01) / ln(1 - p_optimal)
  (inf if p_optimal is 0, the run time if p_optimal >= 0.99). It treats a run as one trial that
  succeeds with p_optimal, the per-sample rate, which is conservative (a run keeps the best of its
  samples) and is the same definition ``anneal.py`` uses, so the two compare;
- ``repaired``: 1.0 if the returned plan came from a repaired sample; ``stopped_early``;
- ``beta_i``, ``gamma_i``: the optimiser's final angles (``final_params``, ``qaoa_circuit``);
- device backends: ``transpiled_depth`` and ``two_qubit_gates`` of the transpiled ansatz.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from qiskit.circuit import QuantumCircuit  # type: ignore[import-untyped]
from qiskit.circuit.library import qaoa_ansatz  # type: ignore[import-untyped]
from qiskit_optimization import QuadraticProgram
from qiskit_optimization.algorithms import MinimumEigenOptimizer
from qiskit_optimization.minimum_eigensolvers import QAOA
from qiskit_optimization.optimizers import COBYLA, OptimizerResult

from processors.scheduling.base import finish, register
from processors.scheduling.model import Budget, Instance, SolveResult, Status
from processors.scheduling.qubo import (
    DEFAULT_EVALUATIONS,
    Formulation,
    FormulationError,
    QuboProblem,
    build,
    choose_formulation,
    formulate,
    sample_stats,
)
from twin.errors import ConfigError

__all__ = [
    "BACKENDS",
    "QaoaSolver",
    "QuantumConfigError",
    "ansatz",
    "draw_circuit",
    "final_params",
    "initial_point",
    "qaoa_circuit",
    "scaled_qubo",
]

BACKENDS = ("fast", "reference", "aer", "ibm", "ibm-fake:<FakeName>")
RAMP = 0.75
"""Angle scale of the initial linear ramp (gamma rising to RAMP, beta falling from it)."""
RHOBEG = 0.3
"""COBYLA's first step in radians: a tenth of the angles' useful range, so it explores around the
ramp rather than jumping to another basin at once (its default, 1.0, did worse on small QUBOs)."""


OPTIMIZER_SHARE = 0.75
"""Share of ``budget.time_limit_s`` the optimiser may use; the rest is for the final sampling,
decoding every sample and the exhaustive optimum (hundreds of ms at 20 qubits)."""


class QuantumConfigError(ConfigError):
    """The QAOA backend is not usable as configured; the message names the setting to change."""


# --------------------------------------------------------------------------------------------
# The QUBO as QAOA sees it


DYADIC = float(2**40)


def scaled_qubo(problem: QuboProblem) -> tuple[QuadraticProgram, float]:
    """``problem.qubo`` divided by its Ising form's largest coefficient, and that factor."""
    qubo = problem.qubo
    op, _ = qubo.to_ising()
    coeffs = np.abs(np.asarray(op.coeffs)) if op.num_qubits else np.zeros(0)
    scale = float(coeffs.max()) if coeffs.size and coeffs.max() > 0 else 1.0
    out = QuadraticProgram(f"{qubo.name}-scaled")
    for v in qubo.variables:
        out.binary_var(v.name)
    obj = qubo.objective

    def dyadic(c: float) -> float:
        # On a 2^-40 grid the Ising conversion (halves, quarters, sums) is exact, so a field that
        # cancels is exactly 0: a float residue like -2.2e-16 became a constant RZ angle whose
        # ParameterExpression qiskit 2.6 cannot hash (OverflowError inside qiskit-optimization).
        return round(c / scale * DYADIC) / DYADIC

    out.minimize(
        constant=dyadic(obj.constant),
        linear={k: dyadic(c) for k, c in obj.linear.to_dict(use_name=True).items()},
        quadratic={k: dyadic(c) for k, c in obj.quadratic.to_dict(use_name=True).items()},
    )
    return out, scale


def initial_point(circuit: QuantumCircuit) -> NDArray[np.float64]:
    """A linear ramp for ``qaoa_ansatz`` parameters ``beta[i]`` and ``gamma[i]`` (``circuit.parameters``
    order): gamma_i = (i + 1/2)/p * RAMP, beta_i = (1 - (i + 1/2)/p) * RAMP."""
    params = list(circuit.parameters)
    reps = max(1, len(params) // 2)
    out = []
    for p in params:
        i = int(p.index) if hasattr(p, "index") else 0
        frac = (i + 0.5) / reps
        out.append(frac * RAMP if p.name.startswith("\N{GREEK SMALL LETTER GAMMA}") else (1 - frac) * RAMP)
    return np.asarray(out, dtype=np.float64)


def qaoa_circuit(
    instance: Instance | QuboProblem,
    reps: int = 1,
    params: Sequence[float] | None = None,
    *,
    formulation: Formulation | Literal["auto"] = "auto",
    max_qubits: int = 20,
    horizon: int | None = None,
) -> QuantumCircuit:
    """The QAOA ansatz the ``qaoa`` solver runs for ``instance`` (built as qiskit-optimization
    builds it, with final measurements; pass the solver's ``formulation``, ``max_qubits`` and
    ``horizon`` if not the defaults), bound to ``params`` if given: ``final_params(result)`` are
    the optimiser's final angles. For drawing or benchmarking."""
    if isinstance(instance, QuboProblem):
        problem = instance
    else:
        kind, _, _ = choose_formulation(instance, max_qubits, formulation, horizon)
        problem = build(instance, kind, horizon)
    circuit = ansatz(scaled_qubo(problem)[0], reps)
    if params is not None:
        circuit = circuit.assign_parameters(list(params))
    return circuit


def final_params(result: SolveResult) -> list[float]:
    """The final angles of a ``qaoa`` result (metrics ``beta_i``, ``gamma_i``) in the ansatz's
    parameter order (beta[0..p-1], then gamma[0..p-1]), for ``qaoa_circuit(..., params=...)``."""
    reps = int(result.metrics["reps"])
    return [result.metrics[f"beta_{i}"] for i in range(reps)] + [
        result.metrics[f"gamma_{i}"] for i in range(reps)
    ]


def ansatz(program: QuadraticProgram, reps: int) -> QuantumCircuit:
    """The circuit qiskit-optimization's QAOA samples for an unconstrained ``program``: its Ising
    operator through ``qaoa_ansatz`` (H layer, then per rep RZZ/RZ cost and RX mixer), measured."""
    op, _ = program.to_ising()
    circuit = qaoa_ansatz(op, reps)
    circuit.measure_all()
    return circuit


def draw_circuit(circuit: QuantumCircuit, path: str | Path) -> Path:
    """Draw ``circuit`` with Qiskit's matplotlib drawer into ``path`` (.svg, .png or .pdf), with
    the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    fig = circuit.draw("mpl", fold=40)
    try:
        fig.savefig(out, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out


# --------------------------------------------------------------------------------------------
# Samplers


def _make_sampler(
    backend: str,
    shots: int,
    seed: int,
    token: str | None,
    instance: str | None,
    device: str | None,
    qubits: int,
) -> tuple[Any, Any]:
    """``(sampler, device backend or None)`` for a backend name."""
    if backend == "fast":
        from processors.scheduling.fast_sampler import FastSampler

        return FastSampler(default_shots=shots, seed=seed), None
    if backend == "reference":
        from qiskit.primitives import StatevectorSampler  # type: ignore[import-untyped]

        return StatevectorSampler(default_shots=shots, seed=seed), None
    if backend == "aer":
        from qiskit_aer.primitives import SamplerV2 as AerSampler  # type: ignore[import-untyped]

        return AerSampler(default_shots=shots, seed=seed), None
    if backend.startswith("ibm-fake:"):
        fake = _fake_backend(backend.split(":", 1)[1])
        if fake.num_qubits < qubits:
            raise FormulationError(f"needs {qubits} qubits, {fake.name} has {fake.num_qubits}")
        from qiskit_aer.primitives import SamplerV2 as AerSampler

        sampler = AerSampler.from_backend(fake, default_shots=shots, seed=seed)
        return _TranspilingSampler(sampler, fake, seed), fake
    if backend == "ibm":
        if not token:
            raise QuantumConfigError(_IBM_SETUP_HINT)
        from qiskit_ibm_runtime import QiskitRuntimeService  # type: ignore[import-untyped]
        from qiskit_ibm_runtime import SamplerV2 as RuntimeSampler

        service = QiskitRuntimeService(channel="ibm_quantum_platform", token=token, instance=instance)
        dev = (
            service.backend(device)
            if device
            else service.least_busy(operational=True, simulator=False, min_num_qubits=qubits)
        )
        sampler = RuntimeSampler(mode=dev)
        sampler.options.default_shots = shots
        return _TranspilingSampler(sampler, dev, seed), dev
    raise QuantumConfigError(_unknown_backend(backend))


def _unknown_backend(backend: str) -> str:
    return (
        f"unknown QAOA backend {backend!r} (TWIN_SCHEDULER__QAOA_BACKEND): use one of {', '.join(BACKENDS)}"
    )


_IBM_SETUP_HINT = "QAOA backend 'ibm' needs an IBM Quantum API token: set TWIN_SCHEDULER__IBM_TOKEN"


def _fake_backend(name: str) -> Any:
    from qiskit_ibm_runtime import fake_provider

    cls = getattr(fake_provider, name, None)
    if not name.startswith("Fake") or cls is None:
        known = sorted(n for n in dir(fake_provider) if n.startswith("Fake") and n.endswith("V2"))
        raise QuantumConfigError(
            f"unknown fake backend {name!r} (TWIN_SCHEDULER__QAOA_BACKEND=ibm-fake:<name>): "
            f"e.g. {', '.join(known[:6])}, ..."
        )
    return cls()


class _TranspilingSampler:
    """A ``BaseSamplerV2`` that transpiles each circuit for a device (once per circuit, preset pass
    manager, optimisation level 1, seeded) and runs it on ``inner``. Measurements were added before
    transpiling, so results keep the logical bit order. ``last`` is the last transpiled circuit."""

    def __init__(self, inner: Any, device: Any, seed: int) -> None:
        from qiskit.transpiler import generate_preset_pass_manager  # type: ignore[import-untyped]

        self._inner = inner
        self._pm = generate_preset_pass_manager(optimization_level=1, backend=device, seed_transpiler=seed)
        self._done: dict[int, tuple[QuantumCircuit, QuantumCircuit]] = {}
        self.last: QuantumCircuit | None = None

    def transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        hit = self._done.get(id(circuit))
        if hit is None or hit[0] is not circuit:
            hit = (circuit, self._pm.run(circuit))
            self._done[id(circuit)] = hit
        self.last = hit[1]
        return hit[1]

    def run(self, pubs: Iterable[Any], *, shots: int | None = None) -> Any:
        from qiskit.primitives.containers.sampler_pub import SamplerPub  # type: ignore[import-untyped]

        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        isa = [
            SamplerPub(self.transpile(p.circuit), p.parameter_values, p.shots, validate=False)
            for p in coerced
        ]
        return self._inner.run(isa, shots=shots)


def _register_v2(cls: type) -> None:
    # qiskit-optimization dispatches on isinstance(sampler, BaseSamplerV2): register the wrapper
    # as a virtual subclass rather than inherit the abstract class's machinery.
    from qiskit.primitives import BaseSamplerV2

    BaseSamplerV2.register(cls)


_register_v2(_TranspilingSampler)


# --------------------------------------------------------------------------------------------
# Optimiser with a budget


class _Minimizer:
    """COBYLA (qiskit-optimization's) with at most ``maxiter`` evaluations, stopped before an
    evaluation would end past ``deadline``; it then returns the best point seen."""

    def __init__(self, maxiter: int, deadline: float) -> None:
        self.maxiter = maxiter
        self.deadline = deadline
        self.nfev = 0
        self.stopped = False
        self.best: tuple[float, NDArray[np.float64]] | None = None

    def __call__(
        self,
        fun: Callable[[NDArray[np.float64]], float],
        x0: NDArray[np.float64],
        jac: Any = None,
        bounds: Any = None,
    ) -> OptimizerResult:
        spent: list[float] = []

        def tracked(x: Any) -> float:
            mean = sum(spent) / len(spent) if spent else 0.0
            if self.nfev and time.perf_counter() + 2 * mean > self.deadline:
                raise _OutOfTime
            t0 = time.perf_counter()
            value = float(fun(x))
            spent.append(time.perf_counter() - t0)
            self.nfev += 1
            if self.best is None or value < self.best[0]:
                self.best = (value, np.array(x, dtype=np.float64))
            return value

        try:
            result = COBYLA(maxiter=self.maxiter, rhobeg=RHOBEG).minimize(tracked, x0, bounds=bounds)
        except _OutOfTime:
            self.stopped = True
            result = OptimizerResult()
        if self.best is not None:  # COBYLA's x is its last point; keep the best one measured
            result.fun, result.x = self.best
        result.nfev = self.nfev
        return result


class _OutOfTime(Exception):
    pass


# --------------------------------------------------------------------------------------------
# The solver


def _circuit_depth(circuit: QuantumCircuit) -> int:
    return int(circuit.depth(filter_function=lambda inst: inst.operation.name not in ("measure", "barrier")))


def _two_qubit_gates(circuit: QuantumCircuit) -> int:
    return sum(
        1 for inst in circuit.data if inst.operation.num_qubits == 2 and inst.operation.name != "barrier"
    )


class QaoaSolver:
    """QAOA on a QUBO of the instance (see the module docstring). Options mirror the scheduler's
    settings (``SchedulerSettings.qaoa_options``)."""

    name = "qaoa"

    def __init__(
        self,
        backend: str = "fast",
        reps: int = 1,
        shots: int = 1024,
        max_qubits: int = 20,
        formulation: Formulation | Literal["auto"] = "auto",
        ibm_token: str | None = None,
        ibm_instance: str | None = None,
        ibm_backend: str | None = None,
        horizon: int | None = None,
    ) -> None:
        if backend not in ("fast", "reference", "aer", "ibm") and not backend.startswith("ibm-fake:"):
            raise QuantumConfigError(_unknown_backend(backend))
        if backend == "ibm" and not ibm_token:
            raise QuantumConfigError(_IBM_SETUP_HINT)
        if backend.startswith("ibm-fake:"):
            _fake_backend(backend.split(":", 1)[1])  # fail at configuration, not at the first request
        if reps < 1 or shots < 1 or max_qubits < 1:
            raise QuantumConfigError("QAOA needs reps >= 1, shots >= 1 and max_qubits >= 1")
        self.backend = backend
        self.reps = reps
        self.shots = shots
        self.max_qubits = max_qubits
        self.formulation = formulation
        self.ibm_token = ibm_token
        self.ibm_instance = ibm_instance
        self.ibm_backend = ibm_backend
        self.horizon = horizon

    def solve(self, instance: Instance, budget: Budget) -> SolveResult:
        started = time.perf_counter()
        formulated = formulate(
            instance, self.max_qubits, self.formulation, self.horizon, (self.max_qubits, "qubits", "budget")
        )
        if isinstance(formulated, str):
            return self._unsupported(formulated, started)
        problem, why = formulated
        kind = problem.formulation
        try:
            sampler, device = _make_sampler(
                self.backend,
                self.shots,
                budget.seed,
                self.ibm_token,
                self.ibm_instance,
                self.ibm_backend,
                problem.num_qubits,
            )
        except FormulationError as exc:
            return self._unsupported(str(exc), started)
        scaled, _ = scaled_qubo(problem)
        circuit = qaoa_circuit(problem, self.reps)
        minimizer = _Minimizer(
            budget.evaluations or DEFAULT_EVALUATIONS,
            started + OPTIMIZER_SHARE * max(0.0, budget.time_limit_s),
        )
        # An empty pass manager: circuits reach the sampler as built (device samplers transpile
        # inside ``_TranspilingSampler``); without one qiskit-optimization warns for any V2
        # sampler other than StatevectorSampler.
        from qiskit.transpiler import PassManager

        qaoa = QAOA(
            sampler=sampler,
            optimizer=minimizer,
            reps=self.reps,
            initial_point=initial_point(circuit),
            pass_manager=PassManager(),
        )
        result = MinimumEigenOptimizer(qaoa).solve(scaled)
        wall = time.perf_counter() - started
        stats = sample_stats(problem, [(s.x, s.probability) for s in result.samples], wall)
        metrics = {
            "qubits": float(problem.num_qubits),
            "reps": float(self.reps),
            "shots": float(self.shots),
            "depth": float(_circuit_depth(circuit)),
            "evaluations": float(minimizer.nfev),
            "circuit_samples": float((minimizer.nfev + 1) * self.shots),
            "stopped_early": 1.0 if minimizer.stopped else 0.0,
            "penalty": problem.penalty,
            **stats.metrics,
        }
        if problem.horizon is not None:
            metrics["horizon"] = float(problem.horizon)
        point = minimizer.best[1] if minimizer.best is not None else initial_point(circuit)
        for param, value in zip(circuit.parameters, point, strict=True):
            kind_ = "gamma" if param.name.startswith("\N{GREEK SMALL LETTER GAMMA}") else "beta"
            metrics[f"{kind_}_{param.index}"] = float(value)
        if isinstance(sampler, _TranspilingSampler) and sampler.last is not None:
            metrics["transpiled_depth"] = float(_circuit_depth(sampler.last))
            metrics["two_qubit_gates"] = float(_two_qubit_gates(sampler.last))
        note = f"{kind} formulation, {problem.num_qubits} qubits"
        if stats.best.repaired:
            note += "; plan repaired from an infeasible sample"
        if why:
            note += f"; {why}"
        backend = self.backend if device is None else f"{self.backend} ({device.name})"
        return finish(
            self.name, instance, stats.best.schedule, started, metrics=metrics, backend=backend, note=note
        )

    def _unsupported(self, why: str, started: float) -> SolveResult:
        return SolveResult(
            self.name,
            Status.UNSUPPORTED,
            wall_s=time.perf_counter() - started,
            backend=self.backend,
            note=why,
        )


register("qaoa", QaoaSolver)
