"""A plant file's continuous machines: states derived from a signal, KPIs from the rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from processors.base import Emit
from processors.derived_state import SOURCE
from processors.stages import TwinConfig, machine_chain
from processors.steps import Chain
from sim import load_plant_file
from twin.topics import STATE, TELEMETRY

ROOT = Path(__file__).resolve().parents[3]
PLANT = load_plant_file(ROOT / "docs" / "examples" / "water-works.yaml")
T0 = 1_764_000_000_000


def reading(machine: str, at_s: int, flow: float) -> dict[str, Any]:
    return {
        "event_id": f"r-{machine}-{at_s}", "event_time": T0 + at_s * 1000, "source": "file:p.csv",
        "correlation_id": f"r-{machine}-{at_s}", "line_id": "water", "machine_id": machine,
        "machine_type": "pump", "channels": [
            {"name": "flow", "value": flow, "unit": "m3/h"},
            {"name": "pressure_out", "value": 5.0, "unit": "bar"},
        ],
    }  # fmt: skip


def run(chain: Chain, records: list[tuple[str, dict[str, Any]]]) -> list[Emit]:
    """Feed the chain: a derived state goes to the other steps at once (and out on factory.state;
    the stage drops it when it comes back in)."""
    out: list[Emit] = []
    for topic, record in records:
        out += chain.process_one(topic, record)
    return out


def test_a_pump_that_sends_only_readings_gets_states_and_rate_based_kpis() -> None:
    chain = machine_chain("pump-1", TwinConfig(plant=PLANT))
    # 10 minutes: pumping 30 m3/h, then 3 minutes stopped (flow 0), then 36 m3/h.
    flows = [30.0] * 300 + [0.0] * 180 + [36.0] * 120
    out = run(chain, [(TELEMETRY, reading("pump-1", s, f)) for s, f in enumerate(flows)])
    out += chain.advance(T0 + 20 * 60_000)
    states = [e.record for e in out if e.topic == STATE]
    assert [(s["state"], s["event_time"] - T0, s["reason"]) for s in states] == [
        ("RUNNING", 0, "flow 30 > 2"),
        ("IDLE", 300_000, "flow 0 <= 2"),
        ("RUNNING", 480_000, "flow 36 > 2"),
    ]
    assert all(s["source"] == SOURCE and s["line_id"] == "water" for s in states)
    minutes = {
        (e.record["window_start"] - T0) // 60_000: e.record
        for e in out
        if e.topic == "twin.kpis" and e.record["window_size_s"] == 60
    }
    assert minutes[0]["performance"] == 30 / 40 and minutes[0]["availability"] == 1.0
    assert minutes[0]["total_count"] == 0 and minutes[0]["quality"] == 1.0  # no parts: not measured
    assert minutes[6]["availability"] == 0.0 and minutes[6]["performance"] == 0.0  # stopped all minute
    assert minutes[9]["performance"] == 36 / 40
    assert minutes[9]["oee"] == 36 / 40
    twin_states = [e.record for e in out if e.topic == "twin.state"]
    assert twin_states[-1]["state"] == "RUNNING"


def test_a_machine_reporting_its_own_states_is_left_alone() -> None:
    chain = machine_chain("pump-2", TwinConfig(plant=PLANT))
    own = {
        "event_id": "s1", "event_time": T0, "source": "plc", "correlation_id": "s1", "line_id": "water",
        "machine_id": "pump-2", "previous": None, "state": "RUNNING", "reason": "",
    }  # fmt: skip
    out = run(chain, [(STATE, own), *[(TELEMETRY, reading("pump-2", s, 0.0)) for s in range(1, 30)]])
    assert not [e for e in out if e.topic == STATE]


def test_machines_outside_the_plant_file_derive_nothing() -> None:
    chain = machine_chain("cnc-1", TwinConfig(plant=PLANT))
    out = run(chain, [(TELEMETRY, {**reading("cnc-1", s, 30.0), "machine_id": "cnc-1"}) for s in range(30)])
    assert not [e for e in out if e.topic == STATE]


def test_a_line_of_continuous_machines_has_its_last_machines_time_and_rate() -> None:
    from processors.kpi.line import line_figures

    def window(machine: str, performance: float, run_s: float) -> dict[str, Any]:
        return {
            "machine_id": machine, "planned_time_s": 60.0, "run_time_s": run_s, "total_count": 0,
            "good_count": 0, "ideal_cycle_time_s": 0.0, "performance": performance,
            "oee": performance * run_s / 60, "failures": 0, "mttr_s": None,
        }  # fmt: skip

    both = {"pump-1": window("pump-1", 0.75, 60.0), "pump-2": window("pump-2", 0.9, 30.0)}
    f = line_figures(both, ["pump-1", "pump-2"], 0)
    assert (f.run_ms, f.rate_ratio, f.total) == (30_000, 0.9, 0)
    assert line_figures(both, None, 0).rate_ratio == 0.9  # no layout: the lowest OEE (0.45 < 0.75)
