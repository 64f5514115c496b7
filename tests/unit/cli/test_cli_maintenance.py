"""`twin maintenance` and `twin eval rul`: mistakes are one line; a small training run works end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["maintenance", "train", "--factory", "nope.yaml"], "no such file: nope.yaml"),
        (["maintenance", "train", "--machine-type", "toaster"], "no machine type of the layout can wear out"),
        (["maintenance", "eval", "--models", "no-such-folder"], "no RUL model folder at no-such-folder"),
        (["eval", "rul", "--test", "t.txt", "--truth", "r.txt"], "give --train FILE"),
    ],
)
def test_mistakes_are_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def ok(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code in (0, None)


@pytest.mark.slow
def test_train_then_eval_a_machine_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "models"
    train = ["maintenance", "train", "--machine-type", "qc", "--histories", "5", "--epochs", "5"]
    ok([*train, "--out", str(folder)])
    assert [p.name for p in folder.iterdir()] == ["qc.json"]
    capsys.readouterr()
    ok(["maintenance", "eval", "--models", str(folder), "--histories", "1"])
    out = capsys.readouterr().out
    assert "qc: " in out and "Remaining useful life on simulated" in out and "naive: the mean life" in out
