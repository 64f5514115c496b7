"""A plant file: the lines and machines of a real plant, without a simulator.

What the processors, the gateway and the 3D floor need to know about a line, and nothing about how
to simulate it (docs/plant.md)::

    name: water-works
    lines:
      - id: water
        machines:                         # in flow order
          - id: pump-1
            type: pump
            kind: continuous              # no parts: KPIs from states and a rate
            rate_channel: flow            # its rate, in the channel's unit ...
            nominal_rate: 40              # ... at 100 % performance
            running_when: {channel: flow, above: 2}   # states from signals, while no state events come
            signals:
              - {name: flow, unit: m3/h, low: 0, high: 60}
              - {name: pressure_out, unit: bar, high: 8}
          - id: filler-1
            type: filler
            ideal_cycle_time_s: 1.5       # discrete (the default kind): parts, and their ideal time

The simulator's layout (``sim/factories/*.yaml``) is a superset: ``sim.plant_of`` turns one into a
``PlantSpec`` and ``sim.load_plant_file`` reads either kind of file.

>>> plant = parse_plant({"lines": [{"id": "water", "machines": [
...     {"id": "pump-1", "type": "pump", "kind": "continuous", "rate_channel": "flow", "nominal_rate": 40,
...      "running_when": {"channel": "flow", "above": 2}, "signals": [{"name": "flow", "unit": "m3/h"}]}]}]})
>>> plant.machine("pump-1").running_when
RunningWhen(channel='flow', above=2.0)
>>> plant.line_order()
{'water': ['pump-1']}
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.errors import ConfigError, validated

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Finite = Annotated[float, Field(allow_inf_nan=False)]


def _unique_ids(ids: list[str], what: str) -> None:
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        msg = f"{what} {', '.join(dupes)}"
        raise ValueError(msg)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Signal(_Spec):
    """One measured channel: its unit and, where known, its normal range (limits drawn on the floor)."""

    name: Identifier
    unit: str = ""
    low: Finite | None = None
    high: Finite | None = None

    @model_validator(mode="after")
    def _range(self) -> Signal:
        if self.low is not None and self.high is not None and self.high <= self.low:
            msg = f"high ({self.high}) must be greater than low ({self.low})"
            raise ValueError(msg)
        return self


class RunningWhen(_Spec):
    """The machine runs while ``channel`` is above ``above`` (else it is idle)."""

    channel: Identifier
    above: Finite


class Machine(_Spec):
    """One machine of a line. ``kind: discrete`` makes parts (``ideal_cycle_time_s`` sets the
    performance baseline); ``kind: continuous`` makes none (pumps, fillers by volume, ovens):
    performance is ``rate_channel`` against ``nominal_rate``."""

    id: Identifier
    type: Identifier
    kind: Literal["discrete", "continuous"] = "discrete"
    ideal_cycle_time_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    stage: Identifier | None = None
    """Consecutive machines of one stage are parallel: a part takes one of them (a hybrid flow shop)."""
    rate_channel: Identifier | None = None
    nominal_rate: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    running_when: RunningWhen | None = None
    signals: tuple[Signal, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Machine:
        names = [s.name for s in self.signals]
        _unique_ids(names, "signals: duplicate signal name(s)")
        if (self.rate_channel is None) != (self.nominal_rate is None):
            msg = "rate_channel and nominal_rate go together: the rate is measured against the nominal one"
            raise ValueError(msg)
        if self.kind == "discrete" and self.rate_channel is not None:
            msg = "rate_channel: a discrete machine's performance comes from its parts; use kind: continuous"
            raise ValueError(msg)
        for channel in (self.rate_channel, self.running_when.channel if self.running_when else None):
            if channel is not None and names and channel not in names:
                msg = f"{channel!r} is not one of the machine's signals ({', '.join(names)})"
                raise ValueError(msg)
        return self

    def signal(self, name: str) -> Signal | None:
        return next((s for s in self.signals if s.name == name), None)


class Line(_Spec):
    id: Identifier
    machines: tuple[Machine, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Line:
        _unique_ids([m.id for m in self.machines], "machines: duplicate machine id(s)")
        return self


class PlantSpec(_Spec):
    """The plant: its lines in order, each with its machines in flow order."""

    name: str = "plant"
    lines: tuple[Line, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> PlantSpec:
        seen: dict[str, str] = {}
        for line in self.lines:
            for m in line.machines:
                if m.id in seen:
                    msg = f"machine {m.id!r} is on two lines ({seen[m.id]} and {line.id}): ids are plant-wide"
                    raise ValueError(msg)
                seen[m.id] = line.id
        _unique_ids([line.id for line in self.lines], "lines: duplicate line id(s)")
        return self

    def machines(self) -> Iterator[tuple[Line, Machine]]:
        for line in self.lines:
            for m in line.machines:
                yield line, m

    def machine(self, machine_id: str) -> Machine | None:
        return next((m for _, m in self.machines() if m.id == machine_id), None)

    def line_of(self, machine_id: str) -> str | None:
        return next((line.id for line, m in self.machines() if m.id == machine_id), None)

    def line_order(self) -> dict[str, list[str]]:
        """Machine ids per line, in flow order."""
        return {line.id: [m.id for m in line.machines] for line in self.lines}

    def line_stages(self) -> dict[str, list[list[str]]]:
        """Per line, its stages in flow order: consecutive machines naming the same ``stage`` form
        one (parallel machines); a machine without a stage is a stage of its own.

        >>> b1, b2 = (Machine(id=f"b{i}", type="cnc", stage="b") for i in (1, 2))
        >>> PlantSpec(lines=(Line(id="l", machines=(Machine(id="a", type="press"), b1, b2)),)).line_stages()
        {'l': [['a'], ['b1', 'b2']]}
        """
        out: dict[str, list[list[str]]] = {}
        for line in self.lines:
            stages: list[list[str]] = []
            previous: str | None = None
            for m in line.machines:
                if m.stage is not None and m.stage == previous:
                    stages[-1].append(m.id)
                else:
                    stages.append([m.id])
                previous = m.stage
            out[line.id] = stages
        return out


def parse_plant(data: Any, source: str = "<plant>") -> PlantSpec:
    """Validate loaded YAML; every problem is one ``ConfigError`` line naming the file and field."""
    return validated(PlantSpec, data, source, "plant file")


def read_yaml(path: Path, what: str = "it") -> Any:
    """A YAML file's data; a one-line ``ConfigError`` when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read {what}: {exc}"
        raise ConfigError(msg) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        msg = f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"
        raise ConfigError(msg) from None


def load_plant(path: Path) -> PlantSpec:
    """A plant file (not a simulator layout: ``sim.load_plant_file`` reads both)."""
    return parse_plant(read_yaml(path), str(path))
