"""``twin eval anomalies --from-file``: a labelled CSV through the detectors, and its errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli.app import app, main


def write_csv(path: Path) -> None:
    rng = random.Random(3)
    lines = ["ts,pressure_in [bar],flow,anomaly"]
    for i in range(1500):
        bad = 1200 <= i < 1300
        pressure = 2.5 + rng.gauss(0, 0.05) + (2.0 if bad else 0.0)
        lines.append(f"{1_764_000_000 + i},{pressure:.3f},{30 + rng.gauss(0, 0.5):.2f},{int(bad)}")
    path.write_text("\n".join(lines) + "\n")


def test_from_file_prints_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from twin.cli import eval as eval_cmd

    monkeypatch.setattr(eval_cmd.console, "width", 200)  # keep table rows on one line
    csv_path = tmp_path / "pump.csv"
    write_csv(csv_path)
    result = CliRunner().invoke(
        app,
        ["eval", "anomalies", "--from-file", str(csv_path), "--label-column", "anomaly",
         "--time-column", "ts", "--machine-id", "pump-1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1/1 faults detected, 0 false" in result.output
    assert "false-alarm rate" in result.output and "missed-alarm rate" in result.output


def test_missing_file_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "anomalies", "--from-file", str(tmp_path / "nope.csv"), "--machine-id", "p"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no such file") and "\n" not in err


def test_missing_label_column_names_the_columns(tmp_path: Path) -> None:
    csv_path = tmp_path / "x.csv"
    csv_path.write_text("time,a\n1764000000,1\n")
    result = CliRunner().invoke(app, ["eval", "anomalies", "--from-file", str(csv_path), "--machine-id", "p"])
    assert result.exit_code != 0
    assert "no label column 'anomaly'" in str(result.exception)


@pytest.mark.slow
def test_default_scenario_meets_the_quality_goal() -> None:
    # The default 6 h scenario, seed 1, through the detectors (docs/anomaly-detection.md, Results).
    from twin.cli.eval import evaluate_simulation

    result = evaluate_simulation(None, 6.0, 1)
    assert result.faults.recall >= 0.9, result.faults
    assert result.faults.precision >= 0.8, result.faults
