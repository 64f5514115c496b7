"""The factory-line simulator: stations, buffers, parts, sensors, and faults with ground-truth labels.

Pure Python and deterministic by seed; no Kafka, no I/O beyond reading a layout file.

>>> from sim import Simulator, load_factory
>>> sim = Simulator(load_factory(), seed=1)
>>> len(sim.step(10.0)) > 0
True
"""

from __future__ import annotations

from sim.actions import Action, Pause, Resume, StartMaintenance
from sim.catalog import MACHINE_TYPES, ChannelRole
from sim.dispatch import (
    RULE_NAMES,
    Decision,
    DecisionCause,
    EddPolicy,
    FifoPolicy,
    MwkrPolicy,
    PlanPolicy,
    Policy,
    QueueItem,
    SptPolicy,
    policy_by_name,
)
from sim.events import ChannelReading, PartProducedEvent, SimEvent, StateChangeEvent, TelemetryEvent
from sim.faults import FaultKind, FaultRecord, faults_to_rows
from sim.histories import History, run_to_failure
from sim.layout import (
    BreakSpec,
    ChangeoverSpec,
    ChannelSpec,
    FactorySpec,
    FamilySpec,
    FaultSpec,
    LineSpec,
    RandomFaultsSpec,
    ReleaseSpec,
    ScenarioSpec,
    SetupSpec,
    StationSpec,
)
from sim.loader import DEFAULT_FACTORY_PATH, factory_names, load_factory, parse_factory
from sim.observation import BufferObservation, FactoryObservation, LineObservation, MachineObservation
from sim.plant import is_simulator_layout, load_plant_file, plant_of
from sim.simulator import DEFAULT_START_TIME_MS, Simulator
from sim.states import MachineState

__all__ = [
    "DEFAULT_FACTORY_PATH",
    "DEFAULT_START_TIME_MS",
    "MACHINE_TYPES",
    "RULE_NAMES",
    "Action",
    "BreakSpec",
    "BufferObservation",
    "ChangeoverSpec",
    "ChannelReading",
    "ChannelRole",
    "ChannelSpec",
    "Decision",
    "DecisionCause",
    "EddPolicy",
    "FactoryObservation",
    "FactorySpec",
    "FamilySpec",
    "FaultKind",
    "FaultRecord",
    "FaultSpec",
    "FifoPolicy",
    "History",
    "LineObservation",
    "LineSpec",
    "MachineObservation",
    "MachineState",
    "MwkrPolicy",
    "PartProducedEvent",
    "Pause",
    "PlanPolicy",
    "Policy",
    "QueueItem",
    "RandomFaultsSpec",
    "ReleaseSpec",
    "Resume",
    "ScenarioSpec",
    "SetupSpec",
    "SimEvent",
    "Simulator",
    "SptPolicy",
    "StartMaintenance",
    "StateChangeEvent",
    "StationSpec",
    "TelemetryEvent",
    "factory_names",
    "faults_to_rows",
    "is_simulator_layout",
    "load_factory",
    "load_plant_file",
    "parse_factory",
    "plant_of",
    "policy_by_name",
    "run_to_failure",
]
