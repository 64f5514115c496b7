"""NASA C-MAPSS turbofan data as histories, and the usual evaluation of a RUL estimator on it.

A C-MAPSS file (``train_FD001.txt``, ``test_FD001.txt``) has one line per engine and cycle,
whitespace-separated: unit, cycle, three operational settings, 21 sensors. ``parse`` turns its text
into one history per unit: readings ``{"t": cycle, "setting1": .., "s1": .., ..., "s21": ..}``. A
training history runs to failure; a test history stops some time before it, and ``RUL_FD001.txt``
holds each test unit's true RUL after its last cycle.

The score (``evaluate``) is the literature's: every test unit streams through ``predict_one`` one
cycle at a time, and the estimate after its last cycle is compared with the true RUL capped at
``cap`` (125): RMSE and the PHM08 score, sum over units of ``exp(-d/13) - 1`` for ``d < 0`` and
``exp(d/10) - 1`` for ``d >= 0``, ``d = predicted - true`` (late predictions cost more).

>>> units = parse("1 1 0.1 0.2 100 " + " ".join(["5"] * 21) + "\\n1 2 0.1 0.2 100 " + " ".join(["6"] * 21))
>>> [r["t"] for r in units[1]], units[1][1]["s21"]
([1.0, 2.0], 6.0)
>>> round(phm08_score([-13.0, 10.0]), 4)
3.4366
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

COLUMNS = ("setting1", "setting2", "setting3", *(f"s{i}" for i in range(1, 22)))
"""Names of the columns after unit and cycle."""


class _Estimator(Protocol):
    def predict_one(self, unit_id: str, reading: Mapping[str, Any]) -> Any: ...


def parse(text: str, source: str = "C-MAPSS text") -> dict[int, list[dict[str, float]]]:
    """Histories by unit number, each in cycle order; ``ValueError`` naming the line otherwise."""
    units: dict[int, list[dict[str, float]]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != 2 + len(COLUMNS):
            expected = f"{2 + len(COLUMNS)} (unit, cycle, 3 settings, 21 sensors)"
            msg = f"{source}: line {n}: {len(cells)} columns, expected {expected}"
            raise ValueError(msg)
        try:
            unit, cycle = int(float(cells[0])), float(cells[1])
            reading = {"t": cycle, **{k: float(v) for k, v in zip(COLUMNS, cells[2:], strict=True)}}
        except ValueError:
            msg = f"{source}: line {n}: not numbers: {line.strip()[:80]!r}"
            raise ValueError(msg) from None
        history = units.setdefault(unit, [])
        if history and cycle <= history[-1]["t"]:
            msg = (
                f"{source}: line {n}: unit {unit} cycle {cycle:g} does not follow cycle {history[-1]['t']:g}"
            )
            raise ValueError(msg)
        history.append(reading)
    if not units:
        msg = f"{source}: no data"
        raise ValueError(msg)
    return units


def parse_truth(text: str, source: str = "RUL file") -> list[float]:
    """The true RUL of each test unit (one number per line, unit 1 first)."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append(float(line.split()[0]))
            except ValueError:
                msg = f"{source}: line {n}: not a number: {line.strip()[:80]!r}"
                raise ValueError(msg) from None
    return out


def read_histories(path: Path) -> dict[int, list[dict[str, float]]]:
    return parse(path.read_text(encoding="utf-8"), str(path))


def read_truth(path: Path) -> list[float]:
    return parse_truth(path.read_text(encoding="utf-8"), str(path))


def phm08_score(errors: Sequence[float]) -> float:
    """The PHM08 challenge score of ``predicted - true`` errors (lower is better)."""
    return sum(math.exp(-d / 13.0) - 1.0 if d < 0 else math.exp(d / 10.0) - 1.0 for d in errors)


def rmse(errors: Sequence[float]) -> float:
    return math.sqrt(sum(d * d for d in errors) / len(errors)) if errors else math.nan


@dataclass(frozen=True)
class Evaluation:
    """Scores at each test unit's last cycle; ``predictions``/``truth`` by unit number (truth capped)."""

    units: int
    rmse: float
    score: float
    readings: int
    cpu_s: float
    """CPU seconds (``time.process_time``) spent in ``predict_one`` over every test reading."""
    predictions: dict[int, float]
    truth: dict[int, float]
    covered: float | None = None
    """Share of units whose capped true RUL lies in the estimate's band (None without a band)."""

    @property
    def readings_per_cpu_s(self) -> float:
        return self.readings / self.cpu_s if self.cpu_s > 0 else math.inf


def evaluate(
    estimator: _Estimator,
    test: Mapping[int, Sequence[Mapping[str, Any]]],
    truth: Sequence[float],
    *,
    cap: float = 125.0,
    rul_of: Callable[[Any], float] = lambda e: float(e.rul),
) -> Evaluation:
    """Stream every test unit through ``estimator.predict_one``, cycle by cycle, and score its last
    estimate against ``truth`` (true RUL of unit ``i`` at ``truth[i - 1]``, capped at ``cap``)."""
    if len(truth) != len(test):
        msg = f"{len(test)} test units but {len(truth)} true RULs"
        raise ValueError(msg)
    last: dict[int, Any] = {}
    n = 0
    t0 = time.process_time()
    for unit in sorted(test):
        uid = str(unit)
        e = None
        for reading in test[unit]:
            e = estimator.predict_one(uid, reading)
        last[unit] = e
        n += len(test[unit])
    cpu = time.process_time() - t0
    predictions = {u: rul_of(e) for u, e in last.items()}
    capped = {u: min(float(truth[i]), cap) for i, u in enumerate(sorted(test))}
    errors = [predictions[u] - capped[u] for u in sorted(test)]
    banded = [e for e in last.values() if hasattr(e, "lower") and hasattr(e, "upper")]
    covered = (
        sum(1 for u, e in last.items() if e.lower <= capped[u] <= e.upper) / len(last)
        if len(banded) == len(last)
        else None
    )
    return Evaluation(len(test), rmse(errors), phm08_score(errors), n, cpu, predictions, capped, covered)
