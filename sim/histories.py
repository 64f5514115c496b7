"""Run-to-failure histories of one machine: what a remaining-useful-life model learns from.

The simulator plays the line with only the wear of interest (the layout's scenario and random faults
off; random breakdowns stay, as in a plant): from ``onset_s`` a wear fault grows on the machine and
fails it ``life_s`` later (``FaultSpec.fails``). The history is that machine's telemetry up to the
failure, each reading with the machine's state at the time, and the failure time is the ground truth.

>>> from sim.loader import load_factory
>>> h = run_to_failure(load_factory(), "cnc-1", FaultKind.BEARING_WEAR, seed=1, onset_s=60, life_s=120)
>>> h.failure_s, h.readings[0].state, round(h.readings[-1].t_s)
(180.0, 'RUNNING', 179)
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.events import StateChangeEvent, TelemetryEvent
from sim.faults import WEAR_FAULTS, FaultKind
from sim.layout import FactorySpec, FaultSpec, ScenarioSpec
from sim.simulator import Simulator

__all__ = ["History", "Reading", "run_to_failure"]

START_MS = 1_764_000_000_000


@dataclass(frozen=True, slots=True)
class Reading:
    t_s: float
    """Seconds since the history began."""
    state: str
    """The machine's state when the reading was taken."""
    values: dict[str, float | None]
    units: dict[str, str]


@dataclass(frozen=True, slots=True)
class History:
    machine_id: str
    machine_type: str
    kind: str
    severity: float
    onset_s: float
    failure_s: float
    """Seconds since the history began at which the machine failed (its last reading is before)."""
    readings: tuple[Reading, ...]


def run_to_failure(
    factory: FactorySpec,
    machine_id: str,
    kind: FaultKind,
    *,
    seed: int,
    onset_s: float,
    life_s: float,
    severity: float = 1.0,
) -> History:
    """One history of ``machine_id``: healthy until ``onset_s``, then ``kind`` wear that fails it
    ``life_s`` later."""
    if kind not in WEAR_FAULTS:
        msg = f"{kind.value} does not wear a machine out (wear faults: bearing_wear, tool_wear)"
        raise ValueError(msg)
    quiet = factory.model_copy(update={"scenario": ScenarioSpec(), "random_faults": None})
    sim = Simulator(quiet, seed=seed, start_time_ms=START_MS)
    sim.inject(
        FaultSpec(
            machine=machine_id, kind=kind, start_s=onset_s, duration_s=life_s, severity=severity, fails=True
        )
    )
    failure_ms = START_MS + round((onset_s + life_s) * 1000)
    state = "RUNNING"
    machine_type = ""
    readings: list[Reading] = []
    for e in sim.run(until_ms=failure_ms):
        if isinstance(e, StateChangeEvent) and e.machine_id == machine_id:
            state = e.state
        elif isinstance(e, TelemetryEvent) and e.machine_id == machine_id and e.time_ms < failure_ms:
            machine_type = e.machine_type
            readings.append(
                Reading(
                    (e.time_ms - START_MS) / 1000,
                    state,
                    {c.name: c.value for c in e.channels},
                    {c.name: c.unit for c in e.channels},
                )
            )
    return History(
        machine_id,
        machine_type,
        kind.value,
        severity,
        onset_s,
        (failure_ms - START_MS) / 1000,
        tuple(readings),
    )
