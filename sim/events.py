"""What the simulator emits. Later code maps each class 1:1 to an Avro record, so names and field order
are a contract: add fields only at the end.

>>> ChannelReading("power", 3.2, "kW")
ChannelReading(name='power', value=3.2, unit='kW')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChannelReading:
    """One sensor value; ``value`` is ``None`` when the sensor delivered nothing (a dropped channel)."""

    name: str
    value: float | None
    unit: str


@dataclass(frozen=True, slots=True)
class TelemetryEvent:
    time_ms: int
    line_id: str
    machine_id: str
    machine_type: str
    channels: tuple[ChannelReading, ...]


@dataclass(frozen=True, slots=True)
class PartProducedEvent:
    """A station finished its cycle on a part; ``good=False`` means the part was scrapped there.

    ``ideal_cycle_time_s`` is the part's nominal time at this station (its family's, where the line
    has families). ``family`` and ``due_ms`` (epoch ms) are ``None`` on lines without them.
    """

    time_ms: int
    line_id: str
    machine_id: str
    part_id: str
    cycle_time_s: float
    ideal_cycle_time_s: float
    good: bool
    scrap_reason: str | None
    family: str | None = None
    due_ms: int | None = None


@dataclass(frozen=True, slots=True)
class StateChangeEvent:
    """``previous`` is ``None`` only for the first event of a machine, when the simulation starts."""

    time_ms: int
    line_id: str
    machine_id: str
    previous: str | None
    state: str
    reason: str


SimEvent = TelemetryEvent | PartProducedEvent | StateChangeEvent
