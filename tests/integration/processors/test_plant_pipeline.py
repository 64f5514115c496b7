"""A plant engineer's first hour, on the real broker: a plant file for two pumps and a filler (no
simulator fields), a CSV of readings for each, `twin process` with the file: states, KPIs and alarms
come out for machines that never sent a state or a part."""

from __future__ import annotations

import time
from pathlib import Path

from localstack import Infra
from processors.derived_state import SOURCE
from tests.integration.processors.pipeline_helpers import namespace
from tests.integration.producers.helpers import twin
from twin.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
PLANT = ROOT / "docs" / "examples" / "water-works.yaml"
RULES = ROOT / "docs" / "examples" / "water-works-rules.yaml"
STEP_S = 2


def write_csv(path: Path, header: str, rows: list[str]) -> None:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


def test_a_plant_file_and_csv_imports_give_states_kpis_and_alarms(
    stack: Infra, settings: Settings, tmp_path: Path
) -> None:
    start = int(time.time()) // 60 * 60 - 25 * 60  # 20 minutes of readings, ending ~5 minutes ago
    n = 20 * 60 // STEP_S
    times = [start + i * STEP_S for i in range(n)]
    # pump-1 pumps 30 m3/h, stopped from minute 8 to 11; pump-2 pumps 36 m3/h with its pressure
    # over the limit from minute 5 to 7; the filler fills 90 bottles/min.
    rows1 = [f"{t},{0.0 if 480 <= t - start < 660 else 30.0},5.0" for t in times]
    rows2 = [f"{t},36.0,{9.5 if 300 <= t - start < 420 else 5.5}" for t in times]
    rows3 = [f"{t},90,60" for t in times]
    files = {
        "pump-1": (tmp_path / "pump-1.csv", "time,flow [m3/h],pressure_out [bar]", rows1),
        "pump-2": (tmp_path / "pump-2.csv", "time,flow [m3/h],pressure_out [bar]", rows2),
        "filler-1": (tmp_path / "filler-1.csv", "time,fill_rate [bottles/min],tank_level [%]", rows3),
    }
    with namespace(settings, tmp_path) as ns:
        for machine, (path, header, rows) in files.items():
            write_csv(path, header, rows)
            out = twin(
                "produce", "--from-file", str(path), "--machine-id", machine, "--plant", str(PLANT),
                "--namespace", ns.prefix, "--metrics-port", "0",
            )  # fmt: skip
            assert out.returncode == 0, out.stdout + out.stderr
            assert f"produced {n:,}, acked {n:,}" in out.stdout, out.stdout
        ns.start_worker(factory=PLANT, rules=RULES)
        ns.wait_processed()
        got = ns.outputs("factory.state", "twin.kpis", "twin.alarms", "twin.state")

    derived = [s for s in got["factory.state"] if s["source"] == SOURCE]
    by_machine = {m: [s["state"] for s in derived if s["machine_id"] == m] for m in files}
    assert by_machine == {
        "pump-1": ["RUNNING", "IDLE", "RUNNING"],
        "pump-2": ["RUNNING"],
        "filler-1": ["RUNNING"],
    }
    assert {s["line_id"] for s in derived if s["machine_id"] == "filler-1"} == {
        "bottling"
    }  # from the plant file

    minutes = [k for k in got["twin.kpis"] if k["scope"] == "MACHINE" and k["window_size_s"] == 60]
    pump1 = {(k["window_start"] // 1000 - start) // 60: k for k in minutes if k["scope_id"] == "pump-1"}
    assert 2 in pump1, (sorted(pump1), [(k["scope_id"], k["window_start"]) for k in minutes][:10], start)
    assert pump1[2]["performance"] == 30 / 40 and pump1[2]["availability"] == 1.0
    assert pump1[9]["availability"] == 0.0  # stopped the whole minute
    fill = [k for k in minutes if k["scope_id"] == "filler-1" and k["availability"] == 1.0]
    assert fill and all(k["performance"] == 90 / 120 for k in fill)
    bottling = [k for k in got["twin.kpis"] if k["scope"] == "LINE" and k["scope_id"] == "bottling"]
    assert any(k["availability"] == 1.0 and k["performance"] == 90 / 120 for k in bottling)

    alarms = [a for a in got["twin.alarms"] if a["machine_id"] == "pump-2"]
    assert {a["alarm_type"] for a in alarms} == {"HighPressure"}
    assert [a["status"] for a in alarms] == ["ACTIVE_UNACK", "CLEARED_UNACK"]
    assert alarms[0]["message"] == "pressure_out 9.5 bar on pump-2, limit 8, peak 9.5"
    assert alarms[0]["details"]["runbook"].startswith("check the discharge valve")

    latest = {s["machine_id"]: s for s in got["twin.state"]}
    assert set(files) <= set(latest) and latest["pump-1"]["state"] == "RUNNING"
