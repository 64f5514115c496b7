"""QAOA sampler speed: our ``FastSampler`` vs Qiskit's ``StatevectorSampler`` vs qiskit-aer's ``SamplerV2``.

What is timed is one QAOA objective evaluation as qiskit-optimization makes it: one
``sampler.run([(ansatz, parameter values)], shots=1024).result()`` call with fresh parameter
values, on the same ansatz object each time (as QAOA does). The circuits are the QAOA ansatz of a
random QUBO (density 0.5, integer coefficients in [-10, 10], scaled like ``quantum.scaled_qubo``)
built by ``quantum.ansatz``, i.e. exactly what the ``qaoa`` solver samples. The first call of each
sampler is reported apart (ours compiles the circuit then: the diagonal energy vectors). The
samplers' calls are interleaved (see ``timed``): the machine's load, which varies, then weighs on
all of them alike; the JSON records the load average before and after.

Same results: for every size, ours and each other sampler run at the same parameter values and the
table reports the total variation distance between their counts next to the distance between two
runs of the *other* sampler with different seeds (the sampling-noise level for that distribution),
and the difference of the mean sampled QUBO energy in standard errors (z). Up to
``--exact-max-qubits`` it also reports the largest difference of exact probabilities from Qiskit's
``Statevector``.

    .venv/bin/python bench/qaoa_sampler.py --sizes 10 14 18 22 --reps 1 3 --out bench-qaoa-sampler.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from qiskit import QuantumCircuit  # type: ignore[import-untyped]
from qiskit.primitives import StatevectorSampler  # type: ignore[import-untyped]
from qiskit.quantum_info import Statevector  # type: ignore[import-untyped]
from qiskit_aer.primitives import SamplerV2 as AerSampler  # type: ignore[import-untyped]
from qiskit_optimization import QuadraticProgram

from processors.scheduling.fast_sampler import FastSampler
from processors.scheduling.quantum import ansatz

SHOTS = 1024


def random_qubo(n: int, rng: np.random.Generator, density: float = 0.5) -> QuadraticProgram:
    qp = QuadraticProgram(f"random{n}")
    names = [qp.binary_var(f"x{i}").name for i in range(n)]
    linear = {v: float(rng.integers(-10, 11)) for v in names}
    quadratic = {
        (names[i], names[j]): float(rng.integers(-10, 11))
        for i in range(n)
        for j in range(i + 1, n)
        if rng.random() < density
    }
    qp.minimize(linear=linear, quadratic=quadratic)
    op, _ = qp.to_ising()
    scale = float(np.abs(op.coeffs).max())
    scaled = QuadraticProgram(qp.name)
    for v in names:
        scaled.binary_var(v)
    scaled.minimize(
        linear={k: c / scale for k, c in linear.items()},
        quadratic={k: c / scale for k, c in quadratic.items()},
    )
    return scaled


def counts_of(sampler: Any, circuit: QuantumCircuit, values: np.ndarray) -> dict[str, int]:
    counts: dict[str, int] = sampler.run([(circuit, values)], shots=SHOTS).result()[0].data.meas.get_counts()
    return counts


def timed(
    samplers: dict[str, Any], circuit: QuantumCircuit, repeats: dict[str, int], rng: np.random.Generator
) -> dict[str, tuple[float, float]]:
    """Per sampler: (first call seconds, median of further calls). The calls are interleaved, in
    rotating order, with the same fresh angles per round, so load changes on the machine hit every
    sampler alike."""
    first: dict[str, float] = {}
    for name, sampler in samplers.items():
        t0 = time.perf_counter()
        counts_of(sampler, circuit, rng.uniform(0, math.pi / 2, circuit.num_parameters))
        first[name] = time.perf_counter() - t0
    times: dict[str, list[float]] = {name: [] for name in samplers}
    names = list(samplers)
    for round_ in range(max(repeats.values())):
        values = rng.uniform(0, math.pi / 2, circuit.num_parameters)
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            if len(times[name]) >= repeats[name]:
                continue
            t0 = time.perf_counter()
            counts_of(samplers[name], circuit, values)
            times[name].append(time.perf_counter() - t0)
    return {name: (first[name], statistics.median(times[name])) for name in samplers}


def tv(a: dict[str, int], b: dict[str, int]) -> float:
    na, nb = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a.get(k, 0) / na - b.get(k, 0) / nb) for k in set(a) | set(b))


def energy_z(qp: QuadraticProgram, a: dict[str, int], b: dict[str, int]) -> float:
    """Difference of the mean QUBO energy of two samples, in standard errors."""

    def energies(c: dict[str, int]) -> np.ndarray:
        out = []
        for key, k in c.items():
            x = np.array([int(ch) for ch in reversed(key)], dtype=float)
            out.extend([qp.objective.evaluate(x)] * k)
        return np.asarray(out)

    ea, eb = energies(a), energies(b)
    se = math.sqrt(ea.var(ddof=1) / ea.size + eb.var(ddof=1) / eb.size)
    return float((ea.mean() - eb.mean()) / se) if se > 0 else 0.0


def compare(
    qp: QuadraticProgram,
    circuit: QuantumCircuit,
    ours: dict[str, int],
    make: Callable[[int], Any],
    values: np.ndarray,
) -> dict[str, float]:
    other = counts_of(make(11), circuit, values)
    other2 = counts_of(make(12), circuit, values)
    return {"tv": tv(ours, other), "tv_noise": tv(other, other2), "energy_z": energy_z(qp, ours, other)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    rows = []
    for n in args.sizes:
        for reps in args.reps:
            rng = np.random.default_rng(1000 * n + reps)
            qp = random_qubo(n, rng)
            circuit = ansatz(qp, reps)
            row: dict[str, Any] = {"qubits": n, "reps": reps, "depth": circuit.depth()}
            samplers: dict[str, Any] = {
                "ours": FastSampler(default_shots=SHOTS, seed=1),
                "aer": AerSampler(default_shots=SHOTS, seed=1),
            }
            repeats = {"ours": args.repeats, "aer": args.repeats}
            if n <= args.reference_max_qubits:
                samplers["reference"] = StatevectorSampler(default_shots=SHOTS, seed=1)
                repeats["reference"] = args.reference_repeats
            for name, (first, median) in timed(samplers, circuit, repeats, rng).items():
                row[f"{name}_first_s"], row[f"{name}_s"] = first, median
            values = rng.uniform(0, math.pi / 2, circuit.num_parameters)
            ours = counts_of(FastSampler(seed=10), circuit, values)
            row["vs_aer"] = compare(qp, circuit, ours, lambda s: AerSampler(seed=s), values)
            if n <= args.reference_max_qubits:
                row["vs_reference"] = compare(qp, circuit, ours, lambda s: StatevectorSampler(seed=s), values)
            if n <= args.exact_max_qubits:
                bound = circuit.remove_final_measurements(inplace=False).assign_parameters(values)
                exact = Statevector(bound).probabilities()
                for precision in ("single", "double"):
                    p = FastSampler(precision=precision).probabilities(circuit, values)
                    row[f"max_dp_{precision}"] = float(np.abs(p - exact).max())
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {
        "load_avg_before": load_before,
        "shots": SHOTS,
        "repeats": args.repeats,
        "reference_repeats": args.reference_repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_after": os.getloadavg(),
        },
        "rows": rows,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        "| qubits | reps | ours s | reference s | aer s | ref/ours | aer/ours | ours first call s "
        "| TV ours-ref (noise) | TV ours-aer (noise) | energy z vs aer | max abs dp (single) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        ref = r.get("reference_s")
        vs_ref = r.get("vs_reference")
        lines.append(
            f"| {r['qubits']} | {r['reps']} | {r['ours_s']:.4f} | "
            + (f"{ref:.3f}" if ref is not None else "not run")
            + f" | {r['aer_s']:.4f} | "
            + (f"{ref / r['ours_s']:.0f}x" if ref is not None else "not run")
            + f" | {r['aer_s'] / r['ours_s']:.1f}x | {r['ours_first_s']:.3f} | "
            + (f"{vs_ref['tv']:.3f} ({vs_ref['tv_noise']:.3f})" if vs_ref else "not run")
            + f" | {r['vs_aer']['tv']:.3f} ({r['vs_aer']['tv_noise']:.3f}) | {r['vs_aer']['energy_z']:+.2f} | "
            + (f"{r['max_dp_single']:.1e}" if "max_dp_single" in r else "-")
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 14, 18, 22])
    parser.add_argument("--reps", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per sampler (median)")
    parser.add_argument("--reference-repeats", type=int, default=3)
    parser.add_argument("--reference-max-qubits", type=int, default=18, help="larger: reference 'not run'")
    parser.add_argument("--exact-max-qubits", type=int, default=14)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args)
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
