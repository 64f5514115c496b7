"""``twin eval anomalies --from-file``: a labelled CSV through the detectors, and its errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app, main
from cli.eval import read_labelled_csv

FAULT = range(1200, 1300)


def csv_lines(sep: str = ",") -> list[str]:
    """1500 readings a second apart of a pump whose pressure rises by 40 noise sd from 1200 s to 1300 s,
    labelled 1 there."""
    rng = random.Random(3)
    lines = [sep.join(["ts", "pressure_in [bar]", "flow", "anomaly"])]
    for i in range(1500):
        bad = i in FAULT
        pressure = 2.5 + rng.gauss(0, 0.05) + (2.0 if bad else 0.0)
        lines.append(
            sep.join(
                [str(1_764_000_000 + i), f"{pressure:.3f}", f"{30 + rng.gauss(0, 0.5):.2f}", str(int(bad))]
            )
        )
    return lines


def write_csv(path: Path, sep: str = ",") -> None:
    path.write_text("\n".join(csv_lines(sep)) + "\n")


def evaluate(csv_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> str:
    from cli import eval as eval_cmd

    monkeypatch.setattr(eval_cmd.console, "width", 200)  # keep table rows on one line
    result = CliRunner().invoke(
        app,
        ["eval", "anomalies", "--from-file", str(csv_path), "--label-column", "anomaly",
         "--time-column", "ts", "--machine-id", "pump-1", *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def test_from_file_prints_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv_path = tmp_path / "pump.csv"
    write_csv(csv_path)
    output = evaluate(csv_path, monkeypatch)
    assert "1/1 faults detected, 0 false" in output
    assert "false-alarm rate" in output and "missed-alarm rate" in output


@pytest.mark.parametrize(("sep", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_delimiter_is_sniffed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sep: str, name: str) -> None:
    # A spreadsheet in a locale whose decimal separator is the comma exports ';'-separated CSV.
    comma, other = tmp_path / "pump.csv", tmp_path / f"pump-{name}.csv"
    write_csv(comma)
    write_csv(other, sep)

    def figures(output: str) -> list[str]:
        # The metric tables, without the throughput line and the per-file rates (sized to the name).
        lines = output.split("Detection rates per file", maxsplit=1)[0].splitlines()
        return [line.rstrip() for line in lines if "readings/s" not in line]

    expected, got = figures(evaluate(comma, monkeypatch)), figures(evaluate(other, monkeypatch))
    assert got == [line.replace("pump.csv", other.name) for line in expected]
    assert "1/1 faults detected, 0 false" in "\n".join(got)


def test_delimiter_option_forces_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv_path = tmp_path / "pump.csv"
    write_csv(csv_path, ";")
    assert "1/1 faults detected, 0 false" in evaluate(csv_path, monkeypatch, "--delimiter", ";")
    result = CliRunner().invoke(
        app,
        ["eval", "anomalies", "--from-file", str(csv_path), "--time-column", "ts", "--machine-id", "p",
         "--delimiter", ","],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "no label column 'anomaly'" in str(result.exception)  # the whole header is one column


def test_label_only_row_is_an_error_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: the row was dropped while its label was kept, so every later reading got the label of
    # the row above it.
    lines = csv_lines()
    lines.insert(1000, ",,,0")  # line 1001 of the file
    csv_path = tmp_path / "pump.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "anomalies", "--from-file", str(csv_path), "--time-column", "ts", "--machine-id", "p"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "line 1001" in err and "label" in err and "\n" not in err


def test_labels_stay_with_their_rows_across_blank_lines(tmp_path: Path) -> None:
    csv_path = tmp_path / "x.csv"
    csv_path.write_text("time;v;anomaly\n1764000000;1.0;0\n\n;;\n1764000001;2.0;1\n1764000002;3.0;0\n")
    records, labels = read_labelled_csv(csv_path, "anomaly", "time", "m")
    assert [(r["channels"][0]["value"], a) for r, a in zip(records, labels, strict=True)] == [
        (1.0, False), (2.0, True), (3.0, False),
    ]  # fmt: skip


def test_bad_row_is_reported_at_its_line_in_the_file(tmp_path: Path) -> None:
    csv_path = tmp_path / "x.csv"
    csv_path.write_text("time,v,anomaly\n1764000000,1.0,0\n\n\n1764000001,oops,1\n")
    result = CliRunner().invoke(app, ["eval", "anomalies", "--from-file", str(csv_path), "--machine-id", "p"])
    assert result.exit_code != 0
    assert "line 5: column 'v': 'oops' is not a number" in str(result.exception)


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
    from cli.eval import evaluate_simulation

    result = evaluate_simulation(None, 6.0, 1)
    assert result.faults.recall >= 0.9, result.faults
    assert result.faults.precision >= 0.8, result.faults


def write_matrix(path: Path, rows: int, onset: int | None, sep: str = "  ") -> None:
    """A headerless numeric matrix like Tennessee Eastman's ``dNN_te.dat``: 5 channels, the third
    stepping by 8 noise sd from row ``onset`` on."""
    rng = random.Random(path.name)
    lines = []
    for i in range(rows):
        values = [50 + rng.gauss(0, 1) for _ in range(5)]
        if onset is not None and i >= onset:
            values[2] += 8
        lines.append(sep + sep.join(f"{v:.6E}" for v in values))
    path.write_text("\n".join(lines) + "\n")


def test_headerless_whitespace_files_give_fdr_and_far_per_file_and_overall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import eval as eval_cmd

    monkeypatch.setattr(eval_cmd.console, "width", 200)
    for name in ("d01_te.dat", "d02_te.dat"):
        write_matrix(tmp_path / name, 400, 160)
    write_matrix(tmp_path / "d00_te.dat", 400, None)
    files = [
        arg
        for name in ("d01_te.dat", "d02_te.dat", "d00_te.dat")
        for arg in ("--from-file", str(tmp_path / name))
    ]
    result = CliRunner().invoke(
        app, ["eval", "anomalies", *files, "--sample-period", "180", "--fault-onset", "160"]
    )
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in result.output.splitlines()
        if line.startswith("│")
    }
    assert set(rows) == {"d01_te.dat", "d02_te.dat", "d00_te.dat", "all"}
    readings, abnormal, fdr, far = rows["d01_te.dat"][:4]
    assert (readings, abnormal) == ("400", "240") and float(fdr) > 0.9 and float(far) < 0.05
    # The same onset applies to every file: d00 has no step, so its abnormal rows go unflagged.
    assert rows["d00_te.dat"][1] == "240" and float(rows["d00_te.dat"][2]) < 0.1
    assert rows["all"][:2] == ["1,200", "720"]


def test_a_normal_recording_reports_far_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import eval as eval_cmd

    monkeypatch.setattr(eval_cmd.console, "width", 200)
    write_matrix(tmp_path / "d00_te.dat", 300, None)
    result = CliRunner().invoke(
        app, ["eval", "anomalies", "--from-file", str(tmp_path / "d00_te.dat"), "--sample-period", "180"]
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("│ d00_te.dat"))
    cells = [c.strip() for c in row.split("│")[2:-1]]
    assert cells[1] == "0" and cells[2] == "n/a" and float(cells[3]) < 0.05


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault-onset", "1"], "no time column 'time'; give --sample-period"),
        (
            ["--sample-period", "1", "--fault-onset", "5", "--label-column", "x2"],
            "--fault-onset is for files without one",
        ),
        (["--sample-rate", "2"], "--sample-rate needs --index-column"),
        (["--index-column", "x1"], "--index-column needs --sample-rate"),
        (["--index-column", "n", "--sample-rate", "2", "--fault-onset", "1"], "no index column 'n'"),
        (["--index-column", "x1", "--sample-rate", "2", "--sample-period", "1"], "not both"),
        (
            ["--warmup-transposed", "--sample-period", "1", "--fault-onset", "1"],
            "--warmup-transposed is about",
        ),
    ],
)
def test_recording_mistakes_are_one_line(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.csv"
    path.write_text("x1,x2\n1,0\n2,0\n")
    with pytest.raises(SystemExit):
        main(["eval", "anomalies", "--from-file", str(path), *args])
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err


def rates_rows(output: str) -> dict[str, list[str]]:
    return {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in output.splitlines()
        if line.startswith("│") and line.split("│")[1].strip()
    }


def invoke_wide(monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    from cli import eval as eval_cmd

    monkeypatch.setattr(eval_cmd.console, "width", 200)
    result = CliRunner().invoke(app, ["eval", "anomalies", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_index_column_with_a_rate_places_the_rows_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same readings with a time column (one a second) and with a sample counter at 1 Hz: the
    # same figures; the counter is not a signal.
    lines = csv_lines()
    counted = ["sample,pressure_in [bar],flow,anomaly"] + [
        ",".join([str(i), *line.split(",")[1:]]) for i, line in enumerate(lines[1:])
    ]
    (tmp_path / "pump.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "counted.csv").write_text("\n".join(counted) + "\n")
    common = ("--label-column", "anomaly", "--machine-id", "pump-1")
    timed = invoke_wide(
        monkeypatch, "--from-file", str(tmp_path / "pump.csv"), "--time-column", "ts", *common
    )
    by_index = invoke_wide(
        monkeypatch, "--from-file", str(tmp_path / "counted.csv"), "--index-column", "sample",
        "--sample-rate", "1", *common,
    )  # fmt: skip
    assert rates_rows(by_index)["counted.csv"] == rates_rows(timed)["pump.csv"]
    assert "1/1 faults detected, 0 false" in by_index


def test_a_non_numeric_sample_index_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.csv"
    path.write_text("n,x\n0,1\nsecond,2\n")
    with pytest.raises(SystemExit):
        main(["eval", "anomalies", "--from-file", str(path), "--index-column", "n", "--sample-rate", "10",
              "--fault-onset", "1"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "line 3" in err and "'second' is not a number" in err and "\n" not in err


def test_warmup_prefix_is_learning_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_matrix(tmp_path / "d01_te.dat", 400, 300)
    out = invoke_wide(
        monkeypatch, "--from-file", str(tmp_path / "d01_te.dat"), "--sample-period", "180",
        "--fault-onset", "300", "--warmup", "150",
    )  # fmt: skip
    readings, abnormal, fdr, far = rates_rows(out)["d01_te.dat"][:4]
    assert (readings, abnormal) == ("250", "100") and float(fdr) > 0.9 and float(far) < 0.05


def test_warmup_file_stored_one_variable_per_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A normal run stored transposed (5 rows of 300 values, like d00.dat), then the test file.
    write_matrix(tmp_path / "normal.dat", 300, None)
    rows = [line.split() for line in (tmp_path / "normal.dat").read_text().splitlines()]
    (tmp_path / "d00.dat").write_text("\n".join("  ".join(col) for col in zip(*rows, strict=True)) + "\n")
    write_matrix(tmp_path / "d01_te.dat", 200, 100)
    args = ["--from-file", str(tmp_path / "d01_te.dat"), "--sample-period", "180", "--fault-onset", "100",
            "--warmup-file", str(tmp_path / "d00.dat")]  # fmt: skip
    out = invoke_wide(monkeypatch, *args, "--warmup-transposed")
    readings, abnormal, fdr, far = rates_rows(out)["d01_te.dat"][:4]
    assert (readings, abnormal) == ("200", "100") and float(fdr) > 0.9 and float(far) < 0.05
    result = CliRunner().invoke(app, ["eval", "anomalies", *args])  # forgot the flag
    assert result.exit_code != 0
    assert "--warmup-transposed" in str(result.exception) or "--warmup-transposed" in result.output


def test_labels_json_windows_label_the_readings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # NAB's form: {"dir/file.csv": [[start, end], ...]}, ISO times, a reading every 5 minutes.
    import json
    from datetime import UTC, datetime, timedelta

    rng = random.Random(2)
    start = datetime(2014, 1, 1, tzinfo=UTC)
    lines = ["timestamp,value"]
    for i in range(1500):
        t = start + timedelta(minutes=5 * i)
        lines.append(f"{t:%Y-%m-%d %H:%M:%S},{70 + rng.gauss(0, 0.5) + (8 if 1200 <= i < 1260 else 0):.3f}")
    (tmp_path / "temp.csv").write_text("\n".join(lines) + "\n")
    lo, hi = start + timedelta(minutes=5 * 1200), start + timedelta(minutes=5 * 1259)
    windows = {
        "realKnownCause/temp.csv": [[f"{lo:%Y-%m-%d %H:%M:%S}.000000", f"{hi:%Y-%m-%d %H:%M:%S}.000000"]]
    }
    (tmp_path / "windows.json").write_text(json.dumps(windows))
    out = invoke_wide(
        monkeypatch, "--from-file", str(tmp_path / "temp.csv"), "--time-column", "timestamp",
        "--labels-json", str(tmp_path / "windows.json"),
    )  # fmt: skip
    assert "1/1 faults detected" in out
    readings, abnormal = rates_rows(out)["temp.csv"][:2]
    assert (readings, abnormal) == ("1,500", "60")
