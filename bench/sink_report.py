"""What the sink benches share: timing one run, medians over alternating rounds, the table rows.

A summary is ``{"per_s": wall items/s, "cpu_s": client CPU-seconds, "per_cpu_s": items per client
CPU-second}`` (medians), whatever the item is (rows, documents, records).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable

Run = tuple[float, float, int]  # wall seconds, client CPU-seconds, items


def measure(fn: Callable[[], int]) -> Run:
    """Run ``fn`` (which returns how many items it handled) once, timed."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    n = fn()
    return time.perf_counter() - wall0, time.process_time() - cpu0, n


def summary(runs: list[Run]) -> dict[str, float]:
    """Medians of ``runs``."""
    return {
        "per_s": statistics.median(n / w for w, _, n in runs),
        "cpu_s": statistics.median(c for _, c, _ in runs),
        "per_cpu_s": statistics.median(n / c if c > 0 else 0.0 for _, c, n in runs),
    }


def print_table(unit: str, rows: Iterable[tuple[str, dict[str, float]]]) -> None:
    """A markdown table of summaries: wall ``unit``/s, client CPU-s, ``unit`` per client CPU-second."""
    print(f"| path | wall {unit}/s (median) | client CPU-s (median) | {unit} per client CPU-second |")
    print("| --- | --- | --- | --- |")
    for label, s in rows:
        print(f"| {label} | {s['per_s']:,.0f} | {s['cpu_s']:.2f} | {s['per_cpu_s']:,.0f} |")
