"""The twin's two stages as data: the steps per machine and per line, and their configuration.

Per machine, ``MACHINE_STEPS``: telemetry, production and state feed the twin state, the alarm rules,
the anomaly detectors, the remaining-useful-life estimates and the KPI windows; the detectors'
anomalies and the RUL estimates feed the alarms, and every alarm and closed KPI window feeds the twin
state. Per line, ``LINE_STEPS``: the machines' KPI windows feed the line KPIs; state, production,
alarms and RUL estimates feed the schedule trigger. ``pipelines/stage.py``
walks these declarations (``processors.steps.Chain``), and so does anything else that runs the
twin in-process.

>>> machine = machine_chain("cnc-1", TwinConfig())
>>> [e.topic for e in machine.process_one(STATE, {"event_id": "e1", "event_time": 0, "source": "sim",
...     "correlation_id": "e1", "line_id": "line-1", "machine_id": "cnc-1", "previous": None,
...     "state": "RUNNING", "reason": ""})]
['twin.state']
>>> MACHINE_INPUTS
('factory.telemetry', 'factory.production', 'factory.state', 'twin.alarm-commands')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from processors.alarms import AlarmEngine, AlarmRules
from processors.anomaly import AnomalyConfig, AnomalyProcessor
from processors.derived_state import DerivedState
from processors.kpi import KpiConfig, LineKpis, MachineKpis
from processors.kpi.machine import Rate
from processors.maintenance.processor import MaintenanceConfig, MaintenanceProcessor
from processors.schedule_trigger import ScheduleTrigger, ScheduleTriggerConfig
from processors.steps import Chain, Instrument, Step, inputs_of
from processors.twin_state import TwinStateConfig, TwinStateTracker
from twin.plant import PlantSpec
from twin.topics import ALARM_COMMANDS, ALARMS, KPIS, MAINTENANCE, PRODUCTION, STATE, TELEMETRY


@dataclass
class TwinConfig:
    """Configuration of every processor; ``line_order`` maps a line to its stations in flow order."""

    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    kpi: KpiConfig = field(default_factory=KpiConfig)
    twin_state: TwinStateConfig = field(default_factory=TwinStateConfig)
    rules: AlarmRules = field(default_factory=AlarmRules.default)
    horizon_s: float = 3600.0
    maintenance_horizon_s: float = 3600.0  # RUL low end below this: a maintenance request
    max_clock_skew_s: float = 60.0  # inputs stamped further ahead of the wall clock: clock-skew DLQ
    plant: PlantSpec | None = None  # the plant file (or the simulator's layout), when given
    line_order: dict[str, list[str]] = field(default_factory=dict)
    line_stages: dict[str, list[list[str]]] = field(default_factory=dict)


def _twin_state(machine_id: str, c: TwinConfig) -> TwinStateTracker:
    return TwinStateTracker(machine_id, c.twin_state)


def _alarms(machine_id: str, c: TwinConfig) -> AlarmEngine:
    return AlarmEngine(machine_id, c.rules)


def _anomaly(machine_id: str, c: TwinConfig) -> AnomalyProcessor:
    return AnomalyProcessor(machine_id, c.anomaly)


def _maintenance(machine_id: str, c: TwinConfig) -> MaintenanceProcessor:
    return MaintenanceProcessor(machine_id, c.maintenance)


def _derived_state(machine_id: str, c: TwinConfig) -> DerivedState:
    return DerivedState(machine_id, c)


def _machine_kpis(machine_id: str, c: TwinConfig) -> MachineKpis:
    return MachineKpis(machine_id, c.kpi, _rate(machine_id, c))


def _rate(machine_id: str, c: TwinConfig) -> Rate | None:
    """A continuous machine's rate against its nominal one, from the plant file."""
    machine = c.plant.machine(machine_id) if c.plant is not None else None
    if machine is None or machine.rate_channel is None or machine.nominal_rate is None:
        return None
    when = machine.running_when
    above = when.above if when is not None and when.channel == machine.rate_channel else None
    return Rate(machine.rate_channel, machine.nominal_rate, above)


def _line_kpis(line_id: str, c: TwinConfig) -> LineKpis:
    return LineKpis(line_id, c.kpi, c.line_order.get(line_id))


def _schedule_trigger(line_id: str, c: TwinConfig) -> ScheduleTrigger:
    config = ScheduleTriggerConfig(
        horizon_s=c.horizon_s,
        line_order=c.line_order or None,
        line_stages=c.line_stages or None,
        maintenance_horizon_s=c.maintenance_horizon_s,
    )
    return ScheduleTrigger(line_id, config)


MACHINE_STEPS: tuple[Step, ...] = (
    Step(
        "state",
        _twin_state,
        consumes=(TELEMETRY, PRODUCTION, STATE),
        takes=("alarms", "kpi", "derived-state"),
    ),
    Step(
        "alarms",
        _alarms,
        consumes=(TELEMETRY, STATE, ALARM_COMMANDS),
        takes=("anomaly", "maintenance", "derived-state"),
    ),
    # The operating state is context for the detectors: what is normal while idle is not while running.
    Step("anomaly", _anomaly, consumes=(TELEMETRY, STATE), takes=("derived-state",)),
    # Remaining useful life from the machine type's model, in the states it was trained on.
    Step("maintenance", _maintenance, consumes=(TELEMETRY, STATE), takes=("derived-state",)),
    # Telemetry only matters to a continuous machine's KPIs (its rate); the chain skips it for others.
    Step("kpi", _machine_kpis, consumes=(PRODUCTION, STATE, TELEMETRY), takes=("derived-state",)),
    # States from signals, for a machine the plant file says how: taken by the steps above at once,
    # and published on factory.state (the stage drops them when they come back in).
    Step("derived-state", _derived_state, consumes=(TELEMETRY, STATE)),
)
"""Per machine (key ``machine_id``)."""

LINE_STEPS: tuple[Step, ...] = (
    Step("line-kpi", _line_kpis, consumes=(KPIS,)),
    Step("schedule-trigger", _schedule_trigger, consumes=(STATE, PRODUCTION, ALARMS, MAINTENANCE)),
)
"""Per line (key ``line_id``), fed with what its machines forward."""

MACHINE_INPUTS = inputs_of(MACHINE_STEPS)
"""The machine stage's input topics, all keyed by machine id."""
LINE_INPUTS = inputs_of(LINE_STEPS)
"""What a machine forwards to its line (re-keyed by line_id), its own inputs or derived records."""


def machine_chain(machine_id: str, config: TwinConfig, instrument: Instrument | None = None) -> Chain:
    """The steps of one machine, ready to run."""
    return Chain(machine_id, MACHINE_STEPS, config, instrument)


def line_chain(line_id: str, config: TwinConfig, instrument: Instrument | None = None) -> Chain:
    """The steps of one line, ready to run."""
    return Chain(line_id, LINE_STEPS, config, instrument)
