"""A Qiskit ``BaseSamplerV2`` that simulates QAOA-shaped circuits fast, with plain numpy.

Why: a QAOA run makes a hundred or more sampler calls on the same circuit with new angles, and
Qiskit's reference ``StatevectorSampler`` rebuilds a dense simulation gate by gate each time
(3-4 s per call at 18 qubits). A QAOA circuit is a product state, then alternating *diagonal*
cost layers (RZ/RZZ/P/CP/CZ/Z, or a ``PauliEvolutionGate`` of a Z-only operator) and layers of
1-qubit gates (the RX mixer). This sampler exploits that shape:

- **Compilation, once per circuit** (cached): the instructions are walked (high-level gates are
  decomposed through their ``definition`` until they are known) into blocks. Diagonal gates are
  written as Z-strings (``exp(i * angle * c * Z_a Z_b ...)``); a run of them, across any 1-qubit
  gates on other qubits, becomes one *diagonal block*. Each gate angle is an affine function of the
  circuit parameters (anything else becomes an extra "source" evaluated per call), so a block's
  phase is ``sum_p value_p * E_p`` where ``E_p`` is a real vector over the 2^n basis states built
  once from ±1 bit-parity vectors (one matrix product: high-half parities x low-half term sums).
  A QAOA cost layer is therefore one vector ``E_gamma`` and the layer is ``exp(i * gamma * E)``.
  1-qubit gates between diagonal blocks are merged per qubit into one 2x2 matrix; a *1-qubit
  layer* is applied as a few GEMMs of the state (reshaped) by the Kronecker product of up to
  ``GROUP`` neighbouring qubits' matrices, which is memory-bandwidth bound (one pass per group
  instead of one per gate). Other gates: CX is H-CZ-H; other 1- and 2-qubit gates (and 3-qubit
  non-parametrised ones) are applied as dense matrices (correct, not fast); gates without a matrix
  are decomposed; what is left (reset, mid-circuit measurement, control flow) raises
  ``UnsupportedCircuitError``.
- **Each call**: a leading 1-qubit layer on |0...0> is a product state (uniform for the Hadamard
  layer: the first cost layer then *is* the state, ``exp(i*theta)`` written in place); diagonal
  blocks before any superposition or after the last non-diagonal gate change no probability and
  are skipped; outcomes are drawn from |psi|^2 with a two-level (block, then element) inverse-CDF
  search, so no full cumulative sum is needed. The state is never normalised (probabilities are
  normalised when sampling).

Precision: ``precision="single"`` (default) keeps the state in complex64 and computes phases in
float32 (numpy's float32 sin/cos are vectorised, ~30x faster than float64 here). The phase error is
about 1e-7 x |gamma * E| (E is centred to shrink it), far below the 1/sqrt(shots) sampling error;
``precision="double"`` uses complex128 throughout. Bit order follows Qiskit: qubit ``q`` is bit
``q`` of a basis-state index, and a classical register's bit 0 is the rightmost character of its
counts' keys (checked against ``StatevectorSampler`` in the tests).

>>> from qiskit import QuantumCircuit
>>> qc = QuantumCircuit(2)
>>> _ = qc.h(0); _ = qc.cx(0, 1); _ = qc.measure_all()
>>> counts = FastSampler(seed=1).run([qc], shots=1000).result()[0].data.meas.get_counts()
>>> sorted(counts), sum(counts.values())
(['00', '11'], 1000)
"""

from __future__ import annotations

import math
import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from qiskit.circuit import (  # type: ignore[import-untyped]
    ControlFlowOp,
    Parameter,
    ParameterExpression,
    QuantumCircuit,
)
from qiskit.circuit.library import PauliEvolutionGate  # type: ignore[import-untyped]
from qiskit.primitives import BaseSamplerV2  # type: ignore[import-untyped]
from qiskit.primitives.base.base_primitive_job import BasePrimitiveJob  # type: ignore[import-untyped]
from qiskit.primitives.containers import (  # type: ignore[import-untyped]
    BitArray,
    DataBin,
    PrimitiveResult,
    SamplerPubResult,
)
from qiskit.primitives.containers.sampler_pub import SamplerPub  # type: ignore[import-untyped]
from qiskit.providers import JobStatus  # type: ignore[import-untyped]
from qiskit.quantum_info import SparsePauliOp  # type: ignore[import-untyped]

from twin.errors import TwinError

__all__ = ["GROUP", "FastSampler", "UnsupportedCircuitError"]

GROUP = 5
"""Qubits per GEMM pass of a 1-qubit layer (32x32 matrices: measured fastest at 18-22 qubits)."""
MAX_QUBITS = 30
"""Largest circuit simulated (2^30 complex64 amplitudes are 8 GiB)."""
_CACHE_SIZE = 4
_CONST = -1
"""Source index of a diagonal block's parameter-free terms."""
_SKIP = frozenset({"barrier", "delay", "global_phase", "id"})
_DIAG_PARAM = frozenset({"rz", "p", "u1", "rzz", "cp", "cu1", "crz"})
_SMALL_DENSE = 3
"""Parameter-free gates on up to this many qubits are taken from their matrix (diagonal or dense)."""

Complex = NDArray[np.complexfloating[Any, Any]]
Real = NDArray[np.floating[Any]]
ZTerms = dict[tuple[int, ...], float]


class UnsupportedCircuitError(TwinError, ValueError):
    """The fast sampler cannot simulate an instruction of the circuit (the message names it)."""


# --------------------------------------------------------------------------------------------
# Angles: affine functions of the "sources" (circuit parameters, then non-affine expressions)


@dataclass(frozen=True, slots=True)
class _Affine:
    const: float
    coef: tuple[tuple[int, float], ...] = ()

    def value(self, src: NDArray[np.float64]) -> float:
        return self.const + sum(c * float(src[i]) for i, c in self.coef)

    def scaled(self, factor: float) -> _Affine:
        return _Affine(self.const * factor, tuple((i, c * factor) for i, c in self.coef))


def _number(x: object) -> float | None:
    if isinstance(x, int | float):
        return float(x)
    if isinstance(x, complex):
        return x.real if abs(x.imag) < 1e-12 else None
    return None


class _Sources:
    """Circuit parameters (indices 0..P-1, in ``circuit.parameters`` order) and the non-affine
    expressions found in gate angles (indices P.., evaluated per call)."""

    def __init__(self, params: Sequence[Parameter]) -> None:
        self.params = list(params)
        self.index = {p: i for i, p in enumerate(self.params)}
        self.extra: list[ParameterExpression] = []

    def affine(self, value: object) -> _Affine:
        num = _number(value)
        if num is not None:
            return _Affine(num)
        if not isinstance(value, ParameterExpression):
            raise UnsupportedCircuitError(f"gate parameter {value!r} is neither a number nor an expression")
        if isinstance(value, Parameter):
            return _Affine(0.0, ((self.index[value], 1.0),))
        coef: list[tuple[int, float]] = []
        for p in value.parameters:
            g = _number(value.gradient(p))
            if g is None:
                break
            coef.append((self.index[p], g))
        else:
            const = _number(value.bind({p: 0.0 for p in value.parameters}).numeric())
            if const is not None:
                return _Affine(const, tuple(coef))
        self.extra.append(value)
        return _Affine(0.0, ((len(self.params) + len(self.extra) - 1, 1.0),))

    def values(self, params: NDArray[np.float64]) -> NDArray[np.float64]:
        if not self.extra:
            return params
        binding = dict(zip(self.params, params.tolist(), strict=True))
        more = [
            float(np.real(complex(e.bind({p: binding[p] for p in e.parameters}).numeric())))
            for e in self.extra
        ]
        return np.concatenate([params, np.asarray(more, dtype=np.float64)])


# --------------------------------------------------------------------------------------------
# Blocks of a compiled circuit


@dataclass(slots=True)
class _Gate1:
    """A 1-qubit gate whose matrix may depend on the sources."""

    name: str
    angles: tuple[_Affine, ...] = ()
    fixed: NDArray[np.complex128] | None = None
    op: Any = None

    def matrix(self, src: NDArray[np.float64]) -> NDArray[np.complex128]:
        if self.fixed is not None:
            return self.fixed
        vals = [a.value(src) for a in self.angles]
        return _param_matrix(self.name, vals, self.op)


@dataclass(slots=True)
class _Diag:
    terms: dict[int, ZTerms] = field(default_factory=dict)
    """Source (``_CONST`` for none) -> Z-string (sorted qubits) -> coefficient of the phase."""
    qubits: set[int] = field(default_factory=set)
    vectors: list[tuple[int, Real]] = field(default_factory=list)
    const_phase: Complex | None = None

    def add(self, qubits: Iterable[int], angle: _Affine, terms: Mapping[tuple[int, ...], float]) -> None:
        self.qubits.update(qubits)
        for source, factor in ((_CONST, angle.const), *angle.coef):
            if factor == 0.0:
                continue
            into = self.terms.setdefault(source, {})
            for z, c in terms.items():
                into[z] = into.get(z, 0.0) + factor * c


@dataclass(slots=True)
class _Layer:
    gates: dict[int, list[_Gate1]] = field(default_factory=dict)


@dataclass(slots=True)
class _Dense:
    qubits: tuple[int, ...]
    angles: tuple[_Affine, ...]
    fixed: NDArray[np.complex128] | None
    op: Any

    def matrix(self, src: NDArray[np.float64]) -> NDArray[np.complex128]:
        if self.fixed is not None:
            return self.fixed
        return _param_matrix(self.op.name, [a.value(src) for a in self.angles], self.op)


_Block = _Diag | _Layer | _Dense

_H = np.array([[1, 1], [1, -1]], dtype=np.complex128) / math.sqrt(2)
_CZ_TERMS = {(0,): -math.pi / 4, (1,): -math.pi / 4, (0, 1): math.pi / 4}


def _param_matrix(name: str, vals: Sequence[float], op: Any) -> NDArray[np.complex128]:
    if name == "rx":
        c, s = math.cos(vals[0] / 2), math.sin(vals[0] / 2)
        return np.array([[c, -1j * s], [-1j * s, c]], dtype=np.complex128)
    if name == "ry":
        c, s = math.cos(vals[0] / 2), math.sin(vals[0] / 2)
        return np.array([[c, -s], [s, c]], dtype=np.complex128)
    if name in ("u", "u3"):
        th, ph, la = vals
        c, s = math.cos(th / 2), math.sin(th / 2)
        return np.array(
            [[c, -np.exp(1j * la) * s], [np.exp(1j * ph) * s, np.exp(1j * (ph + la)) * c]],
            dtype=np.complex128,
        )
    bound = op.copy()
    bound.params = list(vals)
    return np.asarray(bound.to_matrix(), dtype=np.complex128)


def _walsh(phases: NDArray[np.float64], qargs: Sequence[int]) -> ZTerms:
    """Z-string coefficients of a phase function over ``qargs`` (local bit j = ``qargs[j]``)."""
    k = len(qargs)
    idx = np.arange(1 << k)
    out: ZTerms = {}
    for mask in range(1, 1 << k):
        sign = 1.0 - 2.0 * (np.bitwise_count(idx & mask) & 1)
        c = float(np.mean(phases * sign))
        if abs(c) > 1e-14:
            z = tuple(sorted(qargs[j] for j in range(k) if mask >> j & 1))
            out[z] = out.get(z, 0.0) + c
    return out


def _param_diag_terms(name: str, q: Sequence[int]) -> ZTerms:
    """Phase per unit angle of the parametrised diagonal gates, as Z-strings (global phase dropped)."""
    if name == "rz":
        return {(q[0],): -0.5}
    if name in ("p", "u1"):  # lambda * b, b = (1 - z) / 2
        return {(q[0],): -0.5}
    if name == "rzz":
        return {tuple(sorted(q)): -0.5}
    if name in ("cp", "cu1"):  # lambda * b_a * b_b
        return {(q[0],): -0.25, (q[1],): -0.25, tuple(sorted(q)): 0.25}
    if name == "crz":  # b_c * (-theta / 2) * z_t
        return {(q[1],): -0.25, tuple(sorted(q)): 0.25}
    raise AssertionError(name)


def _remap(terms: Mapping[tuple[int, ...], float], qargs: Sequence[int]) -> ZTerms:
    return {tuple(sorted(qargs[j] for j in z)): c for z, c in terms.items()}


class _Compiler:
    """Walks a circuit into blocks (see the module docstring for the merging rules)."""

    def __init__(self, circuit: QuantumCircuit) -> None:
        self.circuit = circuit
        self.sources = _Sources(list(circuit.parameters))
        self.blocks: list[_Block] = []
        self.measured: dict[int, int] = {}
        """Classical bit -> qubit of the final measurements."""
        self.done: set[int] = set()
        """Measured qubits: no gate may follow on them."""

    def run(self) -> None:
        qc = self.circuit
        for inst in qc.data:
            qargs = [qc.find_bit(q).index for q in inst.qubits]
            cargs = [qc.find_bit(c).index for c in inst.clbits]
            self.visit(inst.operation, qargs, cargs)

    # -- placement of diagonal and 1-qubit pieces
    def add_diag(self, qubits: Sequence[int], angle: _Affine, terms: Mapping[tuple[int, ...], float]) -> None:
        qs = set(qubits)
        blocks = self.blocks
        if blocks and isinstance(blocks[-1], _Diag):
            target = blocks[-1]
        elif (
            len(blocks) >= 2
            and isinstance(blocks[-1], _Layer)
            and isinstance(blocks[-2], _Diag)
            and not qs & set(blocks[-1].gates)
        ):
            target = blocks[-2]  # commutes with the layer after it (other qubits)
        else:
            target = _Diag()
            blocks.append(target)
        target.add(qs, angle, terms)

    def add_1q(self, q: int, gate: _Gate1) -> None:
        blocks = self.blocks
        if blocks and isinstance(blocks[-1], _Layer):
            target = blocks[-1]
        elif (
            len(blocks) >= 2
            and isinstance(blocks[-1], _Diag)
            and isinstance(blocks[-2], _Layer)
            and q not in blocks[-1].qubits
        ):
            target = blocks[-2]
        else:
            target = _Layer()
            blocks.append(target)
        target.gates.setdefault(q, []).append(gate)

    def pending_1q(self, q: int, fold: bool = False) -> bool:
        """Whether the last block is a 1-qubit layer acting on ``q``. With ``fold`` (a 1-qubit
        diagonal gate asking whether to join that layer rather than start a diagonal block): never
        the leading layer, which must stay a plain product state (|+>^n for QAOA)."""
        if not self.blocks or not isinstance(self.blocks[-1], _Layer) or q not in self.blocks[-1].gates:
            return False
        return not (fold and len(self.blocks) == 1)

    # -- one instruction
    def visit(self, op: Any, qargs: list[int], cargs: list[int]) -> None:  # noqa: PLR0911, PLR0912
        name = op.name
        if name in _SKIP or op.num_qubits == 0 or getattr(op, "_directive", False):
            return
        if name == "measure":
            self.measured[cargs[0]] = qargs[0]
            self.done.add(qargs[0])
            return
        if name == "reset" or cargs or isinstance(op, ControlFlowOp):
            raise UnsupportedCircuitError(
                f"the fast sampler cannot simulate {name!r} on qubits {tuple(qargs)}"
            )
        if self.done & set(qargs):
            raise UnsupportedCircuitError(
                f"{name!r} on qubits {tuple(qargs)} follows a measurement: "
                "mid-circuit measurements are not supported"
            )
        if name in _DIAG_PARAM:
            if len(qargs) == 1 and self.pending_1q(qargs[0], fold=True):
                self.add_1q(qargs[0], _Gate1(name, (self.sources.affine(op.params[0]),), op=op))
            else:
                self.add_diag(qargs, self.sources.affine(op.params[0]), _param_diag_terms(name, qargs))
            return
        if name == "cx":
            c, t = qargs
            self.add_1q(t, _Gate1("h", fixed=_H))
            self.add_diag(qargs, _Affine(1.0), _remap(_CZ_TERMS, [c, t]))
            self.add_1q(t, _Gate1("h", fixed=_H))
            return
        if isinstance(op, PauliEvolutionGate) and self.evolution(op, qargs):
            return
        if op.is_parameterized():
            if op.num_qubits <= 2 and _has_param_matrix(op):
                angles = tuple(self.sources.affine(p) for p in op.params)
                if op.num_qubits == 1:
                    self.add_1q(qargs[0], _Gate1(name, angles, op=op))
                else:
                    self.blocks.append(_Dense(tuple(qargs), angles, None, op))
                return
        elif op.num_qubits <= _SMALL_DENSE:
            m = _fixed_matrix(op)
            if m is not None:
                if not np.allclose(m, np.diag(np.diag(m)), atol=1e-12):
                    if op.num_qubits == 1:
                        self.add_1q(qargs[0], _Gate1(name, fixed=m))
                    else:
                        self.blocks.append(_Dense(tuple(qargs), (), m, op))
                elif op.num_qubits == 1 and self.pending_1q(qargs[0], fold=True):
                    self.add_1q(qargs[0], _Gate1(name, fixed=m))
                else:
                    self.add_diag(qargs, _Affine(1.0), _walsh(np.angle(np.diag(m)), qargs))
                return
        definition = op.definition
        if definition is None:
            raise UnsupportedCircuitError(
                f"the fast sampler has no way to simulate {name!r} (no matrix, no definition)"
            )
        for inst in definition.data:
            sub_q = [qargs[definition.find_bit(q).index] for q in inst.qubits]
            sub_c = [cargs[definition.find_bit(c).index] for c in inst.clbits]
            self.visit(inst.operation, sub_q, sub_c)

    def evolution(self, op: Any, qargs: list[int]) -> bool:
        """``exp(-i t H)`` of a Z-only ``H`` (a diagonal block) or of 1-local commuting terms (a
        1-qubit layer); False for anything else (then decomposed by its definition)."""
        ops = op.operator if isinstance(op.operator, list) else [op.operator]
        if len(ops) != 1 or not isinstance(ops[0], SparsePauliOp):
            return False
        spo: SparsePauliOp = ops[0]
        coeffs = np.asarray(spo.coeffs)
        if np.any(np.abs(coeffs.imag) > 1e-12) or any(isinstance(c, ParameterExpression) for c in coeffs):
            return False
        time = self.sources.affine(op.params[0])
        xs, zs = np.asarray(spo.paulis.x), np.asarray(spo.paulis.z)
        if not xs.any():
            terms: ZTerms = {}
            for row, c in zip(zs, coeffs.real, strict=True):
                z = tuple(sorted(qargs[j] for j in np.flatnonzero(row)))
                if z:
                    terms[z] = terms.get(z, 0.0) - float(c)
            self.add_diag(qargs, time, terms)
            return True
        support = xs | zs
        weights = support.sum(axis=1)
        if np.all(weights <= 1) and len({int(np.flatnonzero(r)[0]) for r in support if r.any()}) == int(
            (weights == 1).sum()
        ):
            for row_x, row_z, c in zip(xs, zs, coeffs.real, strict=True):
                if not (row_x.any() or row_z.any()):
                    continue
                j = int(np.flatnonzero(row_x | row_z)[0])
                kind = {(True, False): "rx", (True, True): "ry", (False, True): "rz"}[
                    (bool(row_x[j]), bool(row_z[j]))
                ]
                angle = time.scaled(2.0 * float(c))
                if kind == "rz":
                    self.add_diag([qargs[j]], angle, {(qargs[j],): -0.5})
                else:
                    self.add_1q(qargs[j], _Gate1(kind, (angle,)))
            return True
        return False


def _groups(qubits: Sequence[int], n: int) -> list[tuple[int, int]]:
    """Contiguous qubit ranges ``[s, e)`` of at most ``GROUP`` qubits covering ``qubits``. A layer on
    most qubits is split evenly over all n (fewer, equal passes); a sparse one only covers its own."""
    if 2 * len(qubits) >= n:
        count = -(-n // GROUP)
        sizes = [n // count + (1 if i < n % count else 0) for i in range(count)]
        starts = np.cumsum([0, *sizes])
        return [(int(starts[i]), int(starts[i + 1])) for i in range(count)]
    out: list[tuple[int, int]] = []
    todo = list(qubits)
    while todo:
        s = todo[0]
        e = min(s + GROUP, n)
        group = [q for q in todo if q < e]
        todo = todo[len(group) :]
        out.append((s, max(group) + 1))
    return out


_LOOP_MIN = 256
"""Middle groups whose lower stride is at least this run one GEMM per outer index; below it one
batched ``matmul``, whose per-matrix overhead wins over a Python loop for short strides."""


def _apply_group(m: Complex, state: Complex, out: Complex, s: int, e: int, n: int) -> Complex:
    """``out`` = the state with ``m`` (acting on qubits ``[s, e)``) applied; GEMMs on contiguous
    views only (measured single-threaded: 5 qubits per pass, ~55 ms for an RX layer at 22 qubits)."""
    d, lo, hi = 1 << (e - s), 1 << s, 1 << (n - e)
    if lo == 1:
        np.matmul(state.reshape(hi, d), m.T, out=out.reshape(hi, d))
    elif hi == 1:
        np.matmul(m, state.reshape(d, lo), out=out.reshape(d, lo))
    elif lo >= _LOOP_MIN:
        a, b = state.reshape(hi, d, lo), out.reshape(hi, d, lo)
        for h in range(hi):
            np.matmul(m, a[h], out=b[h])
    else:
        np.matmul(m, state.reshape(hi, d, lo), out=out.reshape(hi, d, lo))
    return out


def _kron(mats: Sequence[NDArray[np.complex128]], dtype: Any) -> Complex:
    """``mats[-1] (x) ... (x) mats[0]``: ``mats[j]`` acts on local index bit j."""
    out: Complex = np.ones((1, 1), dtype=np.complex128)
    for m in mats:
        out = np.kron(m, out)
    return out.astype(dtype)


def _has_param_matrix(op: Any) -> bool:
    try:
        _param_matrix(op.name, [0.0] * len(op.params), op)
    except Exception:  # gates without a matrix say so in several ways
        return False
    return True


def _fixed_matrix(op: Any) -> NDArray[np.complex128] | None:
    try:
        return np.asarray(op.to_matrix(), dtype=np.complex128)
    except Exception:  # gates without a matrix say so in several ways
        return None


# --------------------------------------------------------------------------------------------
# The compiled program


def _zstring_energy(terms: Mapping[tuple[int, ...], float], n: int) -> NDArray[np.float64]:
    """``E[i] = sum_t c_t * prod_{q in t} z_q(i)`` with ``z_q(i) = 1 - 2 * bit q of i``.

    Split the qubits into a low and a high half: a term's parity is (its high part's parity) x (its
    low part's parity), so with the terms grouped by their high part, ``E`` is the matrix product
    of the high-half parity columns (2^hi x groups) and the groups' low-half energy rows
    (groups x 2^lo): one BLAS call instead of one pass over 2^n values per term."""
    lo = n // 2
    hi = n - lo
    lo_idx = np.arange(1 << lo, dtype=np.int64)
    hi_idx = np.arange(1 << hi, dtype=np.int64)
    groups: dict[int, NDArray[np.float64]] = {}
    for z, c in terms.items():
        if not z or c == 0.0:
            continue
        mask = sum(1 << q for q in z)
        hmask, lmask = mask >> lo, mask & ((1 << lo) - 1)
        row = groups.get(hmask)
        if row is None:
            row = groups[hmask] = np.zeros(1 << lo)
        row += c * (1.0 - 2.0 * (np.bitwise_count(lo_idx & lmask) & 1))
    if not groups:
        return np.zeros(1 << n)
    hmasks = list(groups)
    left = np.stack([1.0 - 2.0 * (np.bitwise_count(hi_idx & h) & 1) for h in hmasks], axis=1)
    right = np.stack([groups[h] for h in hmasks], axis=0)
    return np.asarray((left @ right).reshape(-1), dtype=np.float64)


class _Program:
    def __init__(self, circuit: QuantumCircuit, precision: Literal["single", "double"]) -> None:
        n = circuit.num_qubits
        if n > MAX_QUBITS:
            raise UnsupportedCircuitError(f"{n} qubits: the fast sampler simulates at most {MAX_QUBITS}")
        self.n = n
        self.real: type[np.floating[Any]] = np.float32 if precision == "single" else np.float64
        self.cplx: type[np.complexfloating[Any, Any]] = (
            np.complex64 if precision == "single" else np.complex128
        )
        comp = _Compiler(circuit)
        comp.run()
        self.sources = comp.sources
        self.measured = comp.measured
        self.cregs = [
            (creg.name, [comp.measured.get(circuit.find_bit(b).index) for b in creg])
            for creg in circuit.cregs
        ]
        blocks = comp.blocks
        # Diagonal blocks at the very start act on |0...0> (a global phase) and at the very end change
        # no probability: skip both.
        while blocks and isinstance(blocks[0], _Diag):
            blocks.pop(0)
        while blocks and isinstance(blocks[-1], _Diag):
            blocks.pop()
        self.blocks = blocks
        energies: dict[frozenset[tuple[tuple[int, ...], float]], Real] = {}
        for b in blocks:
            if not isinstance(b, _Diag):
                continue
            for source, terms in sorted(b.terms.items()):
                key = frozenset(terms.items())
                vec = energies.get(key)
                if vec is None:
                    e = _zstring_energy(terms, n)
                    if source != _CONST and e.size:
                        e -= (e.max() + e.min()) / 2  # a global phase; smaller |angle| for float32
                    vec = energies[key] = e.astype(self.real)
                if source == _CONST:
                    phase = np.empty(1 << n, dtype=self.cplx)
                    phase.real, phase.imag = np.cos(vec), np.sin(vec)
                    b.const_phase = phase
                else:
                    b.vectors.append((source, vec))
        self.lock = threading.Lock()
        self._work: dict[str, NDArray[Any]] = {}

    def buffer(self, name: str, dtype: Any) -> NDArray[Any]:
        buf = self._work.get(name)
        if buf is None:
            buf = self._work[name] = np.empty(1 << self.n, dtype=dtype)
        return buf

    # -- simulation
    def probabilities(self, params: NDArray[np.float64]) -> Real:
        """Unnormalised |amplitude|^2 over the 2^n basis states (index bit q = qubit q)."""
        src = self.sources.values(params)
        n = self.n
        state = self.buffer("a", self.cplx)
        spare = self.buffer("b", self.cplx)
        blocks = self.blocks
        uniform = False
        start = 0
        if blocks and isinstance(blocks[0], _Layer):
            uniform = self._product_state(blocks[0], src, state)
            start = 1
            if uniform and not (len(blocks) > 1 and isinstance(blocks[1], _Diag) and blocks[1].vectors):
                state.fill(1)  # else the first diagonal block writes the whole state
        else:
            state.fill(0)
            state[0] = 1
        for b in blocks[start:]:
            if isinstance(b, _Diag):
                self._diag(b, src, state, fresh=uniform)
            elif isinstance(b, _Layer):
                state, spare = self._layer(b, src, state, spare)
            else:
                state, spare = self._dense(b, src, state, spare)
            uniform = False
        if uniform:
            return np.ones(1 << n, dtype=self.real)
        probs = self.buffer("p", self.real)
        np.abs(state, out=probs)
        np.square(probs, out=probs)
        return probs

    def _product_state(self, layer: _Layer, src: NDArray[np.float64], out: Complex) -> bool:
        """Write the layer applied to |0...0> into ``out``; True, writing nothing, if that is the
        uniform state (all ones, the amplitude dropped: the state is never normalised)."""
        cols = []
        for q in range(self.n):
            u = np.array([1.0, 0.0], dtype=np.complex128)
            for g in layer.gates.get(q, ()):
                u = g.matrix(src) @ u
            cols.append(u)
        if all(abs(u[0] - u[1]) < 1e-12 for u in cols):
            return True
        lo = self.n // 2
        halves = []
        for part in (cols[:lo], cols[lo:]):
            vec = np.ones(1, dtype=np.complex128)
            for u in part:
                vec = np.outer(u, vec).reshape(-1)
            halves.append(vec.astype(self.cplx))
        np.outer(halves[1], halves[0], out=out.reshape(halves[1].size, halves[0].size))
        return False

    def _diag(self, b: _Diag, src: NDArray[np.float64], state: Complex, fresh: bool) -> None:
        if b.vectors:
            theta = self.buffer("theta", self.real)
            first = True
            for source, vec in b.vectors:
                v = self.real(src[source])
                if first:
                    np.multiply(vec, v, out=theta)
                    first = False
                else:
                    tmp = self.buffer("theta2", self.real)
                    np.multiply(vec, v, out=tmp)
                    np.add(theta, tmp, out=theta)
            target = state if fresh else self.buffer("phase", self.cplx)
            parts = target.view(self.real)
            np.cos(theta, out=parts[0::2])
            np.sin(theta, out=parts[1::2])
            if not fresh:
                np.multiply(state, target, out=state)
            fresh = False
        if b.const_phase is not None:
            if fresh:
                state[:] = b.const_phase
            else:
                np.multiply(state, b.const_phase, out=state)

    def _layer(
        self, layer: _Layer, src: NDArray[np.float64], state: Complex, spare: Complex
    ) -> tuple[Complex, Complex]:
        n = self.n
        mats: dict[int, NDArray[np.complex128]] = {}
        for q, gates in layer.gates.items():
            u = np.eye(2, dtype=np.complex128)
            for g in gates:
                u = g.matrix(src) @ u
            mats[q] = u
        eye = np.eye(2, dtype=np.complex128)
        powers: dict[tuple[int, bytes], Complex] = {}
        for s, e in _groups(sorted(mats), n):
            group = [mats.get(q, eye) for q in range(s, e)]
            first = group[0].tobytes()
            if all(g.tobytes() == first for g in group[1:]):
                # Equal matrices (the QAOA mixer: RX(2 beta) everywhere) share one Kronecker power.
                mm = powers.get((e - s, first))
                if mm is None:
                    mm = powers[(e - s, first)] = _kron(group, self.cplx)
            else:
                mm = _kron(group, self.cplx)
            state, spare = _apply_group(mm, state, spare, s, e, n), state
        return state, spare

    def _dense(
        self, b: _Dense, src: NDArray[np.float64], state: Complex, spare: Complex
    ) -> tuple[Complex, Complex]:
        n, k = self.n, len(b.qubits)
        m = b.matrix(src).astype(self.cplx).reshape([2] * (2 * k))
        psi = state.reshape([2] * n)
        axes = [n - 1 - q for q in reversed(b.qubits)]
        out = np.tensordot(m, psi, axes=(list(range(k, 2 * k)), axes))
        out = np.moveaxis(out, list(range(k)), axes)
        spare.reshape([2] * n)[...] = out
        return spare, state

    def sample(
        self, params: NDArray[np.float64], shots: int, rng: np.random.Generator, blas_threads: int | None
    ) -> NDArray[np.int64]:
        with self.lock, _BlasThreads(blas_threads):
            probs = self.probabilities(params)
            return _sample_indices(probs, shots, rng)


_BLOCK = 256


class _BlasThreads:
    """Run numpy's OpenBLAS with ``count`` threads in the calling thread only (OpenBLAS >= 0.3.27's
    ``openblas_set_num_threads_local``, found in numpy's bundled library), restored on exit.

    Why: the 1-qubit layers are GEMMs with a 32-wide inner dimension; on this 2-core machine two
    BLAS threads made them slower, and much slower when other processes load the CPUs (at 14 qubits
    32 ms per evaluation with 2 threads, 1.9 ms with 1). Without that symbol it does nothing."""

    _setter: Any = None
    _looked = False

    def __init__(self, count: int | None) -> None:
        self.count = count
        self.previous: int | None = None

    @classmethod
    def _find(cls) -> Any:
        if not cls._looked:
            cls._looked = True
            import ctypes
            from pathlib import Path

            libs = Path(np.__file__).parent.parent / "numpy.libs"
            for path in sorted(libs.glob("*openblas*.so*")) if libs.is_dir() else []:
                try:
                    fn = ctypes.CDLL(str(path)).openblas_set_num_threads_local
                except (OSError, AttributeError):
                    continue
                fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int]
                cls._setter = fn
                break
        return cls._setter

    def __enter__(self) -> None:
        setter = self._find() if self.count is not None else None
        if setter is not None:
            self.previous = int(setter(self.count))

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            self._setter(self.previous)


def _sample_indices(probs: Real, shots: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """``shots`` basis-state indices drawn from the unnormalised ``probs`` (inverse CDF).

    Large vectors go block by block: pick a block from the blocks' sums, then an element inside
    from that block's own cumulative sum; a full cumulative sum over 2^22 values costs ~4x more."""
    size = probs.size
    if size <= 1 << 16:
        cdf = np.cumsum(probs, dtype=np.float64)
        u = rng.random(shots) * cdf[-1]
        return np.asarray(np.minimum(np.searchsorted(cdf, u, side="right"), size - 1), dtype=np.int64)
    blocks = probs.reshape(-1, _BLOCK)
    bsum = blocks.sum(axis=1, dtype=np.float64)
    bcdf = np.cumsum(bsum)
    u = rng.random(shots) * bcdf[-1]
    blk = np.minimum(np.searchsorted(bcdf, u, side="right"), bsum.size - 1)
    frac = np.clip((u - (bcdf[blk] - bsum[blk])) / bsum[blk], 0.0, 1.0 - 1e-12)
    uniq, inv = np.unique(blk, return_inverse=True)
    rows = np.cumsum(blocks[uniq], axis=1, dtype=np.float64)
    rows /= rows[:, -1:]
    rows += np.arange(uniq.size, dtype=np.float64)[:, None]
    pos = np.searchsorted(rows.reshape(-1), frac + inv, side="right") - inv * _BLOCK
    return np.asarray(uniq[inv] * _BLOCK + np.clip(pos, 0, _BLOCK - 1), dtype=np.int64)


def _pack(outcomes: NDArray[np.int64], qubits: Sequence[int | None]) -> NDArray[np.uint8]:
    """Qiskit's ``BitArray`` layout: bytes big-endian, the register's last bit first."""
    nbits = len(qubits)
    bits = np.zeros((outcomes.size, nbits), dtype=np.uint8)
    for j, q in enumerate(qubits):
        if q is not None:
            bits[:, j] = (outcomes >> q) & 1
    bits = bits[:, ::-1]
    pad = -nbits % 8
    if pad:
        bits = np.pad(bits, ((0, 0), (pad, 0)))
    return np.packbits(bits, axis=-1)


# --------------------------------------------------------------------------------------------
# The sampler


class FastSampler(BaseSamplerV2):  # type: ignore[misc]
    """``BaseSamplerV2`` for circuits of diagonal and 1-qubit layers (QAOA); see the module docstring.

    ``seed``: an int gives each ``run`` call a fresh generator from that seed (the same call gives
    the same samples, as Qiskit's ``StatevectorSampler`` does); a ``Generator`` is used as is.
    Compiled circuits are cached (the last few, by identity and shape): QAOA passes the same
    ansatz object every evaluation. A circuit mutated in place after a run should go through
    ``clear_cache``. ``blas_threads``: OpenBLAS threads while simulating (see ``_BlasThreads``;
    None leaves numpy's setting)."""

    def __init__(
        self,
        *,
        default_shots: int = 1024,
        seed: np.random.Generator | int | None = None,
        precision: Literal["single", "double"] = "single",
        blas_threads: int | None = 1,
    ) -> None:
        self._default_shots = default_shots
        self._blas_threads = blas_threads
        self._seed = seed
        self._precision: Literal["single", "double"] = precision
        self._cache: dict[int, tuple[weakref.ref[QuantumCircuit], tuple[int, ...], _Program]] = {}
        self._lock = threading.Lock()

    @property
    def default_shots(self) -> int:
        return self._default_shots

    @property
    def seed(self) -> np.random.Generator | int | None:
        return self._seed

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def run(self, pubs: Iterable[Any], *, shots: int | None = None) -> _FinishedJob:
        """Simulate now, in the calling thread (the work is CPU-bound numpy: a thread per call, as
        Qiskit's ``PrimitiveJob`` starts, would only add its start-up cost); errors are raised by
        ``result()``, as for Qiskit's jobs."""
        coerced = [SamplerPub.coerce(pub, self._default_shots if shots is None else shots) for pub in pubs]
        try:
            return _FinishedJob(self._run(coerced), None)
        except Exception as exc:  # the job's result() raises it, as Qiskit's jobs do
            return _FinishedJob(None, exc)

    def program(self, circuit: QuantumCircuit) -> _Program:
        """The compiled form of ``circuit`` (cached)."""
        shape = (
            circuit.num_qubits,
            circuit.num_clbits,
            len(circuit.data),
            circuit.num_parameters,
        )
        with self._lock:
            hit = self._cache.get(id(circuit))
            if hit is not None and hit[0]() is circuit and hit[1] == shape:
                return hit[2]
        prog = _Program(circuit, self._precision)
        with self._lock:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[id(circuit)] = (weakref.ref(circuit), shape, prog)
        return prog

    def probabilities(
        self, circuit: QuantumCircuit, values: Sequence[float] | None = None
    ) -> NDArray[np.float64]:
        """Exact outcome probabilities of all qubits (index bit q = qubit q), for tests and benches."""
        prog = self.program(circuit)
        params = np.asarray(values if values is not None else [], dtype=np.float64)
        with prog.lock, _BlasThreads(self._blas_threads):
            p = prog.probabilities(params).astype(np.float64)
        return np.asarray(p / p.sum(), dtype=np.float64)

    def _rng(self) -> np.random.Generator:
        if isinstance(self._seed, np.random.Generator):
            return self._seed
        return np.random.default_rng(self._seed)

    def _run(self, pubs: list[Any]) -> PrimitiveResult:
        rng = self._rng()
        return PrimitiveResult([self._run_pub(pub, rng) for pub in pubs], metadata={"version": 2})

    def _run_pub(self, pub: Any, rng: np.random.Generator) -> SamplerPubResult:
        circuit = pub.circuit
        prog = self.program(circuit)
        shape = tuple(pub.shape)
        values = np.asarray(pub.parameter_values.as_array(circuit.parameters), dtype=np.float64)
        values = values.reshape(*shape, circuit.num_parameters)
        arrays = {
            name: np.zeros((*shape, pub.shots, (len(qubits) + 7) // 8), dtype=np.uint8)
            for name, qubits in prog.cregs
        }
        for index in np.ndindex(shape):
            outcomes = prog.sample(values[index], pub.shots, rng, self._blas_threads)
            for name, qubits in prog.cregs:
                arrays[name][index] = _pack(outcomes, qubits)
        data = {name: BitArray(arrays[name], len(qubits)) for name, qubits in prog.cregs}
        return SamplerPubResult(
            DataBin(**data, shape=shape),
            metadata={"shots": pub.shots, "circuit_metadata": circuit.metadata, "simulator": "fast-diagonal"},
        )


class _FinishedJob(BasePrimitiveJob):  # type: ignore[misc]
    """A job that ran when it was created: its result, or the exception that stopped it."""

    def __init__(self, result: PrimitiveResult | None, error: Exception | None) -> None:
        super().__init__(uuid.uuid4().hex)
        self._result = result
        self._error = error

    def result(self) -> PrimitiveResult:
        if self._error is not None:
            raise self._error
        return self._result

    def status(self) -> JobStatus:
        return JobStatus.ERROR if self._error is not None else JobStatus.DONE

    def done(self) -> bool:
        return self._error is None

    def running(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def in_final_state(self) -> bool:
        return True

    def cancel(self) -> bool:
        return False
