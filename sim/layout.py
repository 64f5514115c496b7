"""The factory layout: lines of stations with buffers between them, plus a fault scenario.

Pydantic models validate a layout however it arrives; ``sim.loader.load_factory`` reads one from YAML
and turns validation errors into a ``ConfigError`` naming the file and the field.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.catalog import MACHINE_TYPES, ChannelRole, default_channel
from sim.faults import SENSOR_FAULTS, FaultKind

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
    draws from an unlimited raw-material source and has none. Cycle times are drawn as
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


class LineSpec(_Spec):
    """An ordered line of stations; ``prefill`` fills each buffer to that share at start (warm start)."""

    id: Identifier
    stations: tuple[StationSpec, ...]
    breaks: tuple[BreakSpec, ...] = ()
    prefill: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0

    # Emptiness is checked here, not with Field(min_length=1): pydantic reports a tuple whose items
    # failed validation as "too short" too, which would add a misleading second error.
    @field_validator("stations")
    @classmethod
    def _not_empty(cls, stations: tuple[StationSpec, ...]) -> tuple[StationSpec, ...]:
        if not stations:
            msg = "a line needs at least one station"
            raise ValueError(msg)
        return stations

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
        return self

    def buffer_capacity(self, index: int) -> int:
        """Capacity of the buffer in front of station ``index`` (``index >= 1``)."""
        return self.stations[index].input_buffer or DEFAULT_BUFFER_CAPACITY


class FaultSpec(_Spec):
    """A fault to inject: on ``machine``, ``start_s`` seconds after the simulation starts.

    ``duration_s=None`` keeps it until maintenance repairs it. ``channel`` names the channel of a
    sensor fault (``None``: one is drawn at random); other kinds take no channel.
    """

    machine: str
    kind: FaultKind
    start_s: NonNegative = 0.0
    duration_s: Positive | None = None
    severity: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.5
    channel: str | None = None

    @model_validator(mode="after")
    def _channel_only_for_sensor_faults(self) -> FaultSpec:
        if self.channel is not None and self.kind not in SENSOR_FAULTS:
            msg = f"channel: only sensor faults take a channel, not {self.kind.value}"
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
