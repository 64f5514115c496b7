"""Machine states derived from signals, for machines that report none (pumps, fillers, ovens).

A plant file can say when a machine runs (``running_when: {channel: flow, above: 2}``,
docs/plant.md). For such a machine this step turns its readings into ``factory.state`` records,
RUNNING while the channel is above the level and IDLE otherwise, one per change. They go out on
``factory.state`` like a machine's own reports, so KPIs, the twin state, alarms, the history and
the 3D floor see states without knowing where they came from. Once the machine reports a state of
its own, its own reports win and this step stays quiet for it.

>>> from twin.plant import parse_plant
>>> from processors.stages import TwinConfig
>>> plant = parse_plant({"lines": [{"id": "water", "machines": [{"id": "pump-1", "type": "pump",
...     "kind": "continuous", "running_when": {"channel": "flow", "above": 2}}]}]})
>>> step = DerivedState("pump-1", TwinConfig(plant=plant))
>>> reading = {"event_id": "e1", "event_time": 1000, "line_id": "water", "machine_id": "pump-1",
...            "channels": [{"name": "flow", "value": 31.0, "unit": "m3/h"}]}
>>> [(e.topic, e.record["state"], e.record["reason"]) for e in step.process_one("factory.telemetry", reading)]
[('factory.state', 'RUNNING', 'flow 31 > 2')]
>>> step.process_one("factory.telemetry", {**reading, "event_time": 2000})  # no change: nothing
[]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from processors.base import Emit, Record, derived_id, dump_snapshot, load_snapshot
from twin.topics import STATE, TELEMETRY

if TYPE_CHECKING:
    from processors.stages import TwinConfig

SOURCE = "processor:derived-state"
SNAPSHOT_FORMAT = "derived-state"
SNAPSHOT_VERSION = 1


class DerivedState:
    def __init__(self, machine_id: str, config: TwinConfig) -> None:
        self.machine_id = machine_id
        machine = config.plant.machine(machine_id) if config.plant is not None else None
        self.rule = machine.running_when if machine is not None else None
        # Machines without a rule need nothing from the chain (``Chain`` skips ignored topics).
        self.ignores = frozenset() if self.rule is not None else frozenset({TELEMETRY, STATE})
        self.state: str | None = None  # the last state derived
        self.reported = False  # the machine reported a state of its own: it wins

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        rule = self.rule
        if rule is None or self.reported:
            return []
        if topic == STATE:
            if record.get("source") != SOURCE:
                self.reported = True
            return []
        if topic != TELEMETRY:
            return []
        value = next((c["value"] for c in record["channels"] if c["name"] == rule.channel), None)
        if value is None:  # not in this reading, or a dropped sample: no news about the state
            return []
        running = value > rule.above
        state = "RUNNING" if running else "IDLE"
        if state == self.state:
            return []
        previous, self.state = self.state, state
        t = int(record["event_time"])
        event_id = derived_id("derived-state", self.machine_id, t, state)
        out: dict[str, Any] = {
            "event_id": event_id,
            "event_time": t,
            "source": SOURCE,
            "correlation_id": str(record["event_id"]),
            "line_id": record["line_id"],
            "machine_id": self.machine_id,
            "previous": previous,
            "state": state,
            "reason": f"{rule.channel} {value:g} {'>' if running else '<='} {rule.above:g}",
        }
        return [Emit(STATE, self.machine_id, out)]

    def advance(self, event_time_ms: int) -> list[Emit]:
        return []

    def snapshot(self) -> bytes:
        return dump_snapshot(
            SNAPSHOT_FORMAT, SNAPSHOT_VERSION, {"state": self.state, "reported": self.reported}
        )

    def restore(self, data: bytes) -> None:
        doc = load_snapshot(data, SNAPSHOT_FORMAT, SNAPSHOT_VERSION)
        self.state = doc["state"]
        self.reported = bool(doc["reported"])
