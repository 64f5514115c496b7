"""The C-MAPSS reader and its scoring, on small made-up files (no public data in tests)."""

from __future__ import annotations

import doctest
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import processors.maintenance.cmapss
from processors.maintenance.cmapss import evaluate, parse, parse_truth, phm08_score, read_histories


def line(unit: int, cycle: int, value: float) -> str:
    return " ".join([str(unit), str(cycle), "0.001", "-0.0003", "100.0", *[f"{value:.2f}"] * 21]) + "  "


@dataclass
class Last:
    """Predicts the last reading's s1 as the RUL, and a band of +-5."""

    rul: float = 0.0
    lower: float = 0.0
    upper: float = 0.0

    def predict_one(self, unit_id: str, reading: Any) -> Last:
        self.calls = getattr(self, "calls", 0) + 1
        v = reading["s1"]
        return Last(v, v - 5, v + 5)


def test_parse_reads_units_in_cycle_order(tmp_path: Path) -> None:
    text = "\n".join([line(1, 1, 5.0), line(1, 2, 6.0), line(2, 1, 7.0), ""])
    (tmp_path / "train.txt").write_text(text)
    units = read_histories(tmp_path / "train.txt")
    assert sorted(units) == [1, 2]
    assert [r["t"] for r in units[1]] == [1.0, 2.0]
    assert units[1][0]["setting3"] == 100.0 and units[2][0]["s21"] == 7.0
    assert len(units[1][0]) == 1 + 24


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 1 0.1", "line 1: 3 columns, expected 26"),
        (line(1, 2, 1.0) + "\n" + line(1, 1, 1.0), "line 2: unit 1 cycle 1 does not follow cycle 2"),
        (line(1, 1, 1.0).replace("100.0", "x"), "line 1: not numbers"),
        ("\n\n", "no data"),
    ],
)
def test_parse_names_the_bad_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text, "f.txt")


def test_phm08_score_penalises_late_more_than_early() -> None:
    assert phm08_score([0.0]) == 0.0
    assert phm08_score([10.0]) == pytest.approx(math.e - 1)
    assert phm08_score([-13.0]) == pytest.approx(math.e - 1)
    assert phm08_score([10.0]) > phm08_score([-10.0])


def test_evaluate_scores_the_last_cycle_against_capped_truth() -> None:
    test = parse("\n".join([line(1, 1, 300.0), line(1, 2, 50.0), line(2, 1, 130.0)]))
    truth = parse_truth("40\n200\n")
    est = Last()
    ev = evaluate(est, test, truth, cap=125.0)
    assert est.calls == 3  # every cycle goes through predict_one
    assert ev.truth == {1: 40.0, 2: 125.0}
    assert ev.predictions == {1: 50.0, 2: 130.0}
    assert ev.rmse == pytest.approx(math.sqrt((10.0**2 + 5.0**2) / 2))
    assert ev.score == pytest.approx(math.exp(1.0) - 1 + math.exp(0.5) - 1)
    assert ev.covered == 0.5 and ev.readings == 3
    with pytest.raises(ValueError, match="2 test units but 1 true RULs"):
        evaluate(est, test, [40.0])


def test_docstring_examples() -> None:
    assert doctest.testmod(processors.maintenance.cmapss).failed == 0
