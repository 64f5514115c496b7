"""The factory layout: lines of stations with buffers between them, plus a fault scenario.

Pydantic models validate a layout however it arrives; ``sim.loader.load_factory`` reads one from YAML
and turns validation errors into a ``ConfigError`` naming the file and the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.catalog import MACHINE_TYPES, ChannelRole, default_channel
from sim.dispatch import RULE_NAMES
from sim.faults import SENSOR_FAULTS, WEAR_FAULTS, FaultKind

Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]

DEFAULT_BUFFER_CAPACITY = 5

DEFAULT_FAULT_DURATION_S: dict[FaultKind, float] = {
    FaultKind.BEARING_WEAR: 1800,
    FaultKind.OVERHEATING: 900,
    FaultKind.TOOL_WEAR: 1800,
    FaultKind.STUCK_SENSOR: 600,
    FaultKind.DROPPED_SENSOR: 300,
    FaultKind.JAM: 300,
}


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChannelSpec(_Spec):
    """One sensor channel; see ``sim.catalog`` for what the levels mean."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    unit: str
    running: Finite
    idle: Finite
    down: Finite | None = None
    noise_rel: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    noise_abs: NonNegative = 0.0
    tau_s: NonNegative = 0.0
    load_gain: Annotated[float, Field(ge=0, le=5, allow_inf_nan=False)] = 0.0
    min: Finite = 0.0
    max: Finite | None = None
    decimals: int = Field(2, ge=0, le=6)
    role: ChannelRole | None = None

    @model_validator(mode="after")
    def _range(self) -> ChannelSpec:
        if self.max is not None and self.max <= self.min:
            msg = f"max ({self.max}) must be greater than min ({self.min})"
            raise ValueError(msg)
        return self


class ChangeoverSpec(_Spec):
    """A planned setup after every ``every_parts`` parts (good or scrap) at this station."""

    every_parts: int = Field(gt=0)
    duration_s: Positive


class BreakSpec(_Spec):
    """A planned break: the machines stop (IDLE) from ``start_s`` for ``duration_s``, every ``every_s``."""

    start_s: NonNegative
    duration_s: Positive
    every_s: Positive | None = None

    @model_validator(mode="after")
    def _period(self) -> BreakSpec:
        if self.every_s is not None and self.every_s <= self.duration_s:
            msg = f"every_s ({self.every_s}) must be longer than duration_s ({self.duration_s})"
            raise ValueError(msg)
        return self


class StationSpec(_Spec):
    """One machine and the buffer in front of it.

    ``input_buffer`` is the capacity of the buffer feeding this station; the first station of a line
    draws from an unlimited raw-material source (or a release backlog) and has none. ``stage``
    groups consecutive stations into parallel machines sharing the queue in front of them (its
    capacity set on the first of them). Cycle times are drawn as
    ``ideal_cycle_time_s * (1 + cycle_time_cv * |z|)`` with ``z`` standard normal. ``mtbf_s`` is
    running time between random breakdowns (``None``: none), repaired in about ``mttr_s``.
    """

    id: Identifier
    machine_type: Identifier
    ideal_cycle_time_s: Annotated[float, Field(ge=0.01, allow_inf_nan=False)]
    cycle_time_cv: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.05
    scrap_probability: Probability = 0.0
    mtbf_s: Positive | None = None
    mttr_s: Positive = 300.0
    changeover: ChangeoverSpec | None = None
    breaks: tuple[BreakSpec, ...] = ()
    telemetry_interval_s: Annotated[float, Field(ge=0.05, le=3600, allow_inf_nan=False)] = 1.0
    input_buffer: int | None = Field(None, gt=0, le=100_000)
    channels: tuple[ChannelSpec, ...] = ()
    stage: Identifier | None = None
    """Consecutive stations of one stage are parallel machines sharing one input queue."""

    @model_validator(mode="before")
    @classmethod
    def _resolve_channels(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        machine_type = data.get("machine_type")
        mt = machine_type if isinstance(machine_type, str) else ""
        raw = data.get("channels")
        if raw is None:
            kind = MACHINE_TYPES.get(mt)
            if kind is None:
                known = ", ".join(MACHINE_TYPES)
                msg = (
                    f"machine_type {machine_type!r} has no built-in channels (known: {known}); list channels"
                )
                raise ValueError(msg)
            return {**data, "channels": [dict(c) for c in kind.channels]}
        if not isinstance(raw, list):
            return data
        resolved: list[Any] = []
        for i, entry in enumerate(raw):
            item = {"name": entry} if isinstance(entry, str) else entry
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                base = default_channel(mt, item["name"])
                if base is None and isinstance(entry, str):
                    msg = (
                        f"channels[{i}]: {entry!r} is not a built-in channel of machine_type {mt!r}; "
                        "define it with at least name, unit, running and idle"
                    )
                    raise ValueError(msg)
                item = {**(base or {}), **item}
            resolved.append(item)
        return {**data, "channels": resolved}

    @model_validator(mode="after")
    def _unique_channels(self) -> StationSpec:
        if not self.channels:
            msg = "channels: a station needs at least one channel"
            raise ValueError(msg)
        names = [c.name for c in self.channels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            msg = f"channels: duplicate channel name(s) {', '.join(dupes)}"
            raise ValueError(msg)
        return self

    def channel(self, name: str) -> ChannelSpec | None:
        return next((c for c in self.channels if c.name == name), None)

    def has_role(self, role: ChannelRole) -> bool:
        return any(c.role == role for c in self.channels)


class FamilySpec(_Spec):
    """A product family the line makes.

    ``share``: relative weight in the release mix. Its nominal cycle time at a station is
    ``cycle_times_s[station id]`` where given, else the station's ``ideal_cycle_time_s`` times
    ``processing_factor[stage]`` (default 1). ``due_allowance_s``: an order of this family is due
    that long after its release (overrides the release's default).
    """

    id: Identifier
    share: Positive = 1.0
    processing_factor: dict[Identifier, Positive] = Field(default_factory=dict)
    cycle_times_s: dict[Identifier, Annotated[float, Field(ge=0.01, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )
    due_allowance_s: Positive | None = None


class SetupSpec(_Spec):
    """Sequence-dependent setups: ``times_s[from][to]`` seconds to change a machine from family
    ``from`` to family ``to``; a change not listed takes ``default_s``, a family to itself nothing.

    With ``stage`` the entry holds for that stage only; without, for every stage that has no entry
    of its own.
    """

    stage: Identifier | None = None
    default_s: NonNegative = 0.0
    times_s: dict[Identifier, dict[Identifier, NonNegative]] = Field(default_factory=dict)


class ReleaseSpec(_Spec):
    """Orders released into a backlog in front of the first stage, whose machines dispatch from it.

    ``initial_orders`` arrive at the start (a batch); then, with ``interarrival_s``, one order at a
    time with exponential gaps of that mean (Poisson arrivals), up to ``max_orders`` in all. Each
    order is one part of a family drawn by ``share``, due ``due_allowance_s`` (the family's, else
    this default; none: no due date) after its release. An order arriving to a full ``backlog`` is
    turned away (counted in ``LineObservation.refused``).
    """

    interarrival_s: Positive | None = None
    initial_orders: int = Field(0, ge=0, le=100_000)
    max_orders: int | None = Field(None, gt=0)
    due_allowance_s: Positive | None = None
    backlog: int = Field(1000, gt=0, le=1_000_000)

    @model_validator(mode="after")
    def _some_orders(self) -> ReleaseSpec:
        if self.interarrival_s is None and self.initial_orders == 0:
            msg = "a release needs initial_orders or interarrival_s"
            raise ValueError(msg)
        if self.max_orders is not None and self.max_orders < self.initial_orders:
            msg = f"max_orders ({self.max_orders}) is fewer than initial_orders ({self.initial_orders})"
            raise ValueError(msg)
        return self


class LineSpec(_Spec):
    """A line of stations in flow order; ``prefill`` fills each buffer to that share at start.

    A serial line by default: each station is a stage of its own. Consecutive stations naming the
    same ``stage`` are parallel machines sharing the queue in front of the stage (a hybrid flow
    shop). ``families`` and ``setups`` make parts differ (processing times, sequence-dependent
    setups, due dates); ``release`` feeds the first stage with orders over time instead of an
    unlimited raw-material source; ``dispatch`` names the rule every machine of the line decides
    by until a policy is set (``sim.dispatch``).
    """

    id: Identifier
    stations: tuple[StationSpec, ...]
    breaks: tuple[BreakSpec, ...] = ()
    prefill: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    families: tuple[FamilySpec, ...] = ()
    setups: tuple[SetupSpec, ...] = ()
    release: ReleaseSpec | None = None
    dispatch: str = "fifo"

    # Emptiness is checked here, not with Field(min_length=1): pydantic reports a tuple whose items
    # failed validation as "too short" too, which would add a misleading second error.
    @field_validator("stations")
    @classmethod
    def _not_empty(cls, stations: tuple[StationSpec, ...]) -> tuple[StationSpec, ...]:
        if not stations:
            msg = "a line needs at least one station"
            raise ValueError(msg)
        return stations

    @field_validator("dispatch")
    @classmethod
    def _known_rule(cls, dispatch: str) -> str:
        if dispatch not in RULE_NAMES:
            msg = f"unknown dispatch rule {dispatch!r} (known: {', '.join(RULE_NAMES)})"
            raise ValueError(msg)
        return dispatch

    @model_validator(mode="after")
    def _buffers(self) -> LineSpec:
        if self.stations[0].input_buffer is not None:
            msg = (
                "stations[0].input_buffer: the first station draws from an unlimited raw-material "
                "source; remove input_buffer"
            )
            raise ValueError(msg)
        ids = [s.id for s in self.stations]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            msg = f"stations: duplicate station id(s) {', '.join(dupes)}"
            raise ValueError(msg)
        stage_of: dict[str, int] = {}
        for si, station in enumerate(self.stations):
            name = station.stage or station.id
            first = stage_of.setdefault(name, si)
            if first == si:
                if name != station.id and name in ids:
                    msg = f"stations[{si}].stage: {name!r} is the id of another station"
                    raise ValueError(msg)
                continue
            if self.stations[si - 1].stage != station.stage or station.stage is None:
                msg = f"stations[{si}].stage: the stations of stage {name!r} must be consecutive"
                raise ValueError(msg)
            if station.input_buffer is not None:
                msg = (
                    f"stations[{si}].input_buffer: stage {name!r} shares one queue; set its capacity "
                    f"on its first station ({self.stations[first].id})"
                )
                raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _families(self) -> LineSpec:
        stages = [name for name, _ in self.stages()]
        station_ids = [s.id for s in self.stations]
        family_ids = [f.id for f in self.families]
        dupes = sorted({f for f in family_ids if family_ids.count(f) > 1})
        if dupes:
            msg = f"families: duplicate family id(s) {', '.join(dupes)}"
            raise ValueError(msg)
        for fi, family in enumerate(self.families):
            _known(f"families[{fi}].processing_factor", "stage", family.processing_factor, stages)
            _known(f"families[{fi}].cycle_times_s", "station", family.cycle_times_s, station_ids)
        return self

    @model_validator(mode="after")
    def _setups(self) -> LineSpec:
        if self.setups and not self.families:
            msg = "setups: setups change between families; declare families"
            raise ValueError(msg)
        stages = [name for name, _ in self.stages()]
        family_ids = [f.id for f in self.families]
        seen: set[str | None] = set()
        for ui, setup in enumerate(self.setups):
            if setup.stage is not None:
                _known(f"setups[{ui}].stage", "stage", [setup.stage], stages)
            if setup.stage in seen:
                where = "the whole line" if setup.stage is None else f"stage {setup.stage!r}"
                msg = f"setups[{ui}]: a second setup entry for {where}"
                raise ValueError(msg)
            seen.add(setup.stage)
            for origin, targets in setup.times_s.items():
                _known(f"setups[{ui}].times_s", "family", [origin, *targets], family_ids)
        return self

    def stages(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """The stages in flow order: name and the indexes of their stations (parallel machines).

        A station without ``stage`` is a stage of its own, named by its id.
        """
        out: list[tuple[str, list[int]]] = []
        for si, station in enumerate(self.stations):
            name = station.stage or station.id
            if out and station.stage is not None and out[-1][0] == name:
                out[-1][1].append(si)
            else:
                out.append((name, [si]))
        return tuple((name, tuple(indexes)) for name, indexes in out)

    def buffer_capacity(self, index: int) -> int:
        """Capacity of the queue feeding station ``index`` (shared by the stations of its stage).

        For the first stage that is the order backlog of ``release`` (without one it draws from an
        unlimited source, and this is the default).
        """
        for stage_index, (_, members) in enumerate(self.stages()):
            if index in members:
                if stage_index == 0 and self.release is not None:
                    return self.release.backlog
                return self.stations[members[0]].input_buffer or DEFAULT_BUFFER_CAPACITY
        raise IndexError(index)


class FaultSpec(_Spec):
    """A fault to inject: on ``machine``, ``start_s`` seconds after the simulation starts.

    ``duration_s=None`` keeps it until maintenance repairs it. ``channel`` names the channel of a
    sensor fault (``None``: one is drawn at random); other kinds take no channel.

    ``fails``: a wear fault (bearing or tool wear) that runs its course ends in a failure: at
    ``start_s + duration_s`` the machine goes DOWN (reason ``failure``) for ``repair_s``, and the
    repair ends the wear. Maintenance before then (``StartMaintenance``) repairs the wear and
    prevents the failure. This is the run-to-failure ground truth remaining-useful-life estimates
    are scored against.
    """

    machine: str
    kind: FaultKind
    start_s: NonNegative = 0.0
    duration_s: Positive | None = None
    severity: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.5
    channel: str | None = None
    fails: bool = False
    repair_s: Positive = 1800.0

    @model_validator(mode="after")
    def _channel_only_for_sensor_faults(self) -> FaultSpec:
        if self.channel is not None and self.kind not in SENSOR_FAULTS:
            msg = f"channel: only sensor faults take a channel, not {self.kind.value}"
            raise ValueError(msg)
        if self.fails and self.kind not in WEAR_FAULTS:
            msg = f"fails: only wear faults (bearing_wear, tool_wear) end in a failure, not {self.kind.value}"
            raise ValueError(msg)
        if self.fails and self.duration_s is None:
            msg = "fails: a fault that ends in a failure needs duration_s (when it fails)"
            raise ValueError(msg)
        return self


class ScenarioSpec(_Spec):
    """Scheduled faults; ``repeat_every_s`` replays the schedule with that period (for long demos)."""

    faults: tuple[FaultSpec, ...] = ()
    repeat_every_s: Positive | None = None

    @model_validator(mode="after")
    def _period(self) -> ScenarioSpec:
        if self.repeat_every_s is not None and self.faults:
            last = max(f.start_s + (f.duration_s or math.inf) for f in self.faults)
            if self.repeat_every_s < last:
                msg = (
                    f"repeat_every_s ({self.repeat_every_s}) must cover the whole schedule: "
                    f"the last fault ends at {last} s"
                )
                raise ValueError(msg)
        return self


class RandomFaultsSpec(_Spec):
    """Faults drawn at random: ``rates_per_hour`` per machine and kind; durations uniform in
    0.5-1.5x ``mean_duration_s``; severity uniform in ``[severity_min, severity_max]``."""

    rates_per_hour: dict[FaultKind, NonNegative] = Field(default_factory=dict)
    mean_duration_s: dict[FaultKind, Positive] = Field(default_factory=dict)
    severity_min: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.3
    severity_max: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1.0
    machines: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _severity(self) -> RandomFaultsSpec:
        if self.severity_max < self.severity_min:
            msg = "severity_max must be at least severity_min"
            raise ValueError(msg)
        return self

    def duration_s(self, kind: FaultKind) -> float:
        return self.mean_duration_s.get(kind, DEFAULT_FAULT_DURATION_S[kind])


class FactorySpec(_Spec):
    """A whole factory: one or several independent lines, a fault scenario, random-fault rates."""

    name: str = "factory"
    lines: tuple[LineSpec, ...]
    scenario: ScenarioSpec = ScenarioSpec()
    random_faults: RandomFaultsSpec | None = None

    @field_validator("lines")
    @classmethod
    def _not_empty(cls, lines: tuple[LineSpec, ...]) -> tuple[LineSpec, ...]:
        if not lines:
            msg = "a factory needs at least one line"
            raise ValueError(msg)
        return lines

    @model_validator(mode="after")
    def _references(self) -> FactorySpec:
        line_ids = [line.id for line in self.lines]
        dupes = sorted({i for i in line_ids if line_ids.count(i) > 1})
        if dupes:
            msg = f"lines: duplicate line id(s) {', '.join(dupes)}"
            raise ValueError(msg)
        seen: dict[str, str] = {}
        for li, line in enumerate(self.lines):
            for si, station in enumerate(line.stations):
                if station.id in seen:
                    msg = (
                        f"lines[{li}].stations[{si}].id: machine id {station.id!r} is already used on "
                        f"line {seen[station.id]!r}; machine ids must be unique in the factory"
                    )
                    raise ValueError(msg)
                seen[station.id] = line.id
        for fi, fault in enumerate(self.scenario.faults):
            target = self.station(fault.machine)
            problem = (
                "unknown machine" if target is None else fault_problem(fault.kind, fault.channel, target)
            )
            if problem:
                msg = f"scenario.faults[{fi}]: {problem} (machine {fault.machine!r}, kind {fault.kind.value})"
                raise ValueError(msg)
        if self.random_faults is not None and self.random_faults.machines is not None:
            for mi, machine in enumerate(self.random_faults.machines):
                if machine not in seen:
                    msg = f"random_faults.machines[{mi}]: unknown machine {machine!r}"
                    raise ValueError(msg)
        return self

    def station(self, machine_id: str) -> StationSpec | None:
        for line in self.lines:
            for station in line.stations:
                if station.id == machine_id:
                    return station
        return None

    @property
    def machine_ids(self) -> tuple[str, ...]:
        return tuple(s.id for line in self.lines for s in line.stations)


def _known(where: str, kind: str, names: Iterable[str], known: Sequence[str]) -> None:
    for name in names:
        if name not in known:
            msg = f"{where}: unknown {kind} {name!r} (known: {', '.join(known)})"
            raise ValueError(msg)


def fault_problem(kind: FaultKind, channel: str | None, station: StationSpec) -> str | None:
    """Why ``kind`` cannot be injected into ``station`` (``None`` when it can)."""
    if kind in SENSOR_FAULTS:
        if channel is not None and station.channel(channel) is None:
            known = ", ".join(c.name for c in station.channels)
            return f"channel {channel!r} does not exist (channels: {known})"
    elif channel is not None:
        return f"only sensor faults take a channel, not {kind.value}"
    if kind == FaultKind.BEARING_WEAR and not station.has_role(ChannelRole.VIBRATION):
        return "bearing_wear needs a channel with role vibration"
    if kind == FaultKind.OVERHEATING and not station.has_role(ChannelRole.TEMPERATURE):
        return "overheating needs a channel with role temperature"
    return None
