"""`twin produce --from-file`: bad lines are reported with their number; good ones arrive intact."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from localstack import Infra
from tests.integration.producers.helpers import consume_all, twin
from twin.settings import Settings


def test_jsonl_bad_line_is_reported_and_good_lines_arrive(
    stack: Infra, settings: Settings, tmp_path: Path
) -> None:
    machine = f"pump-{uuid.uuid4().hex[:8]}"
    lines = []
    for i in range(5):
        lines.append(json.dumps({
            "event_time": 1_764_000_000_000 + i * 1000,
            "line_id": "water-1",
            "machine_id": machine,
            "machine_type": "pump",
            "channels": [{"name": "pressure_in", "value": 2.0 + i, "unit": "bar"}],
        }))  # fmt: skip
    lines.insert(
        2, json.dumps({"event_time": 1, "line_id": "water-1", "machine_id": machine, "channels": "lots"})
    )
    recording = tmp_path / "pump.jsonl"
    recording.write_text("\n".join(lines) + "\n")

    out = twin(
        "produce", "--from-file", str(recording), "--topic", "factory.telemetry", "--metrics-port", "0"
    )
    assert out.returncode == 0, out.stderr
    assert "line 3:" in out.stdout and "(not sent)" in out.stdout
    assert "produced 5, acked 5, failed 0, invalid 1" in out.stdout

    mine = [r for r in consume_all(settings, ["factory.telemetry"]) if r["machine_id"] == machine]
    assert [r["channels"][0]["value"] for r in mine] == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert all(r["_key"] == machine and r["source"] == "file:pump.jsonl" for r in mine)


def test_csv_replay_publishes_every_row_with_units(stack: Infra, settings: Settings, tmp_path: Path) -> None:
    machine = f"pump-{uuid.uuid4().hex[:8]}"
    recording = tmp_path / "pump.csv"
    rows = [f"{1_764_000_000 + i * 0.5},{10 + i}" for i in range(5)]  # 2 s of recording
    recording.write_text("time,motor_current [A]\n" + "\n".join(rows) + "\n")
    out = twin(
        "produce", "--from-file", str(recording), "--machine-id", machine, "--line-id", "water-1",
        "--replay-speed", "1", "--metrics-port", "0", env=dict(os.environ),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    mine = [r for r in consume_all(settings, ["factory.telemetry"]) if r["machine_id"] == machine]
    assert mine[0]["channels"][0] == {"name": "motor_current", "value": 10.0, "unit": "A"}
    assert len(mine) == 5


def test_a_file_without_a_valid_line_exits_1_and_reasons_keep_their_brackets(
    stack: Infra, tmp_path: Path
) -> None:
    """Every line rejected: one line per mistake, the file's verdict last, exit 1. A reason that
    quotes a field like 'pressure [bar]' prints it whole (not eaten as console markup)."""
    recording = tmp_path / "bad.jsonl"
    recording.write_text(
        '{"event_time": "2025-11-24T16:00:00Z", "line_id": "l", "machine_id": "m", "channels": [],'
        ' "pressure [bar]": 2}\n'
        '{"event_time": "noon", "line_id": "l", "machine_id": "m", "channels": []}\n'
    )
    out = twin("produce", "--from-file", str(recording), "--metrics-port", "0")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "line 1: unknown field pressure [bar] (not sent)" in out.stdout, out.stdout
    assert "line 2: event_time 'noon' is neither ISO 8601 nor epoch seconds/ms" in out.stdout
    assert out.stderr.strip() == f"error: {recording}: no valid line to publish (2 rejected, reasons above)"
