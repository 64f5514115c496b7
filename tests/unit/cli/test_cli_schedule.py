"""``twin schedule solve``: the comparison table, the Gantt chart, and one-line mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app, main


def test_ft06_prints_the_published_optimum_and_the_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import schedule

    monkeypatch.setattr(schedule.console, "width", 200)
    result = CliRunner().invoke(
        app, ["schedule", "solve", "--instance", "ft06", "--solvers", "cpsat,spt,fifo", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "published optimum 55" in result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.startswith("│")}
    assert "OPTIMAL" in rows["cpsat"] and "│        55 │" in rows["cpsat"] and " 0.0% " in rows["cpsat"]
    assert "94" in rows["spt"] and "65" in rows["fifo"]
    chart = tmp_path / "ft06-gantt.svg"
    assert chart.is_file() and "<svg" in chart.read_text()[:500]


def test_html_gantt_is_one_self_contained_page(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "schedule",
            "solve",
            "--instance",
            "shop8",
            "--solvers",
            "edd",
            "--chart",
            "html",
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "shop8-gantt.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "http" not in page.split("<svg", 1)[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--instance", "zz99"], "unknown instance 'zz99'"),
        (["--instance", "ft06", "--solvers", "cpsat,magic"], "unknown solver magic"),
        ([], "give an instance file or --instance NAME"),
        (["--instance", "ft06", "--chart", "pdf"], "--chart must be svg, png or html"),
    ],
)
def test_mistakes_are_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["schedule", "solve", *args])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["schedule", "solve", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err.strip()
    assert "nope.yaml: cannot read" in err and len(err.splitlines()) == 1


def test_bench_writes_the_methodology_table(tmp_path: Path) -> None:
    out = tmp_path / "quality.md"
    result = CliRunner().invoke(
        app,
        [
            "schedule",
            "bench",
            "--instances",
            "pm3x3,ft06",
            "--solvers",
            "cpsat,fifo,sa",
            "--markdown",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [
        line
        for line in out.read_text().splitlines()
        if line.startswith("| pm3x3") or line.startswith("| ft06")
    ]
    assert len(rows) == 6
    ft06_cpsat = next(r for r in rows if r.startswith("| ft06") and "| cpsat |" in r)
    assert "| 55 |" in ft06_cpsat and "| 0.0% |" in ft06_cpsat
    ft06_sa = next(r for r in rows if r.startswith("| ft06") and "| sa |" in r)
    assert "UNSUPPORTED" in ft06_sa and "942 qubits" in ft06_sa
