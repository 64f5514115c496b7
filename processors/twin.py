"""The whole twin for one machine and for one line: the processors chained in the order the
pipeline (and the benchmark's plain loop) runs them.

Per machine: telemetry → anomaly detection → alarms; production and state → KPI windows; every
alarm and closed KPI window → the twin state. Per line: the machines' KPI windows → line KPIs; state,
production and alarms → schedule trigger. Both are pure and snapshot into one byte string.

>>> config = TwinConfig()
>>> machine = MachineTwin("cnc-1", config)
>>> machine.process_one("factory.state", {"event_id": "e1", "event_time": 0, "source": "sim",
...     "correlation_id": "e1", "line_id": "line-1", "machine_id": "cnc-1", "previous": None,
...     "state": "RUNNING", "reason": ""})[0].topic
'twin.state'
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from processors.alarms import AlarmEngine, AlarmRules
from processors.anomaly import AnomalyConfig, AnomalyProcessor
from processors.base import Emit, Record, SnapshotError
from processors.kpi import KpiConfig, LineKpis, MachineKpis
from processors.schedule_trigger import ScheduleTrigger, ScheduleTriggerConfig
from processors.twin_state import TwinStateConfig, TwinStateTracker

TELEMETRY = "factory.telemetry"
PRODUCTION = "factory.production"
STATE = "factory.state"
COMMANDS = "twin.alarm-commands"
ANOMALIES = "twin.anomalies"
ALARMS = "twin.alarms"
KPIS = "twin.kpis"
SCHEDULE_REQUESTS = "schedule.requests"
TWIN_STATE = "twin.state"

MACHINE_INPUTS = (TELEMETRY, PRODUCTION, STATE, COMMANDS)
# What a machine forwards to its line (re-keyed by line_id): the line's own inputs.
LINE_INPUTS = (STATE, PRODUCTION, ALARMS, KPIS)

_SNAPSHOT_MAGIC = b"FTW1"


@dataclass
class TwinConfig:
    """Configuration of every processor; ``line_order`` maps a line to its stations in flow order."""

    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    kpi: KpiConfig = field(default_factory=KpiConfig)
    twin_state: TwinStateConfig = field(default_factory=TwinStateConfig)
    rules: AlarmRules = field(default_factory=AlarmRules.default)
    horizon_s: float = 3600.0
    line_order: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_files(cls, rules: Path | None = None, **kwargs: object) -> TwinConfig:
        config = cls(**kwargs)  # type: ignore[arg-type]
        if rules is not None:
            config.rules = AlarmRules.from_yaml(rules)
        return config


def pack(parts: dict[str, bytes]) -> bytes:
    """Several named snapshots in one byte string: magic, a JSON index of sizes, the parts."""
    index = json.dumps([[name, len(data)] for name, data in parts.items()]).encode()
    return b"".join([_SNAPSHOT_MAGIC, struct.pack(">I", len(index)), index, *parts.values()])


def unpack(data: bytes) -> dict[str, bytes]:
    if not data.startswith(_SNAPSHOT_MAGIC):
        msg = "not a twin snapshot (bad magic)"
        raise SnapshotError(msg)
    (size,) = struct.unpack_from(">I", data, len(_SNAPSHOT_MAGIC))
    start = len(_SNAPSHOT_MAGIC) + 4
    index = json.loads(data[start : start + size])
    offset = start + size
    parts: dict[str, bytes] = {}
    for name, length in index:
        parts[name] = data[offset : offset + length]
        offset += length
    if offset != len(data):
        msg = f"twin snapshot has {len(data) - offset} unexpected trailing bytes"
        raise SnapshotError(msg)
    return parts


class MachineTwin:
    """All per-machine processors for ``machine_id``, chained."""

    def __init__(self, machine_id: str, config: TwinConfig) -> None:
        self.machine_id = machine_id
        self.anomaly = AnomalyProcessor(config.anomaly)
        self.alarms = AlarmEngine(config.rules)
        self.kpis = MachineKpis(config.kpi)
        self.state = TwinStateTracker(config.twin_state)

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        """Everything one input record causes, in causal order."""
        out: list[Emit] = []
        if topic == TELEMETRY:
            out.extend(self.state.process_one(topic, record))
            self._alarms(topic, record, out)
            for found in self.anomaly.process_one(record):
                out.append(found)
                self._alarms(ANOMALIES, found.record, out)
        elif topic in (PRODUCTION, STATE):
            out.extend(self.state.process_one(topic, record))
            if topic == STATE:
                # The operating state is context for the detectors (what is normal while idle is not
                # normal while running).
                self.anomaly.observe_state(record)
                self._alarms(topic, record, out)
            self._kpis(self.kpis.process_one(topic, record), out)
        elif topic == COMMANDS:
            self._alarms(topic, record, out)
        return out

    def advance(self, watermark_ms: int) -> list[Emit]:
        """Event time moved on (the partition's watermark): close windows, fire duration rules."""
        out: list[Emit] = []
        for emit in self.alarms.advance(self.machine_id, watermark_ms):
            out.append(emit)
            out.extend(self.state.process_one(ALARMS, emit.record))
        self._kpis(self.kpis.advance(watermark_ms), out)
        return out

    def _alarms(self, topic: str, record: Record, out: list[Emit]) -> None:
        for emit in self.alarms.process_one(topic, record):
            out.append(emit)
            out.extend(self.state.process_one(ALARMS, emit.record))

    def _kpis(self, windows: list[Emit], out: list[Emit]) -> None:
        for emit in windows:
            out.append(emit)
            out.extend(self.state.process_one(KPIS, emit.record))

    def snapshot(self) -> bytes:
        m = self.machine_id
        parts = {
            "anomaly": self.anomaly.snapshot(m) if m in self.anomaly.machines() else b"",
            "alarms": self.alarms.snapshot(m) if m in self.alarms.machines() else b"",
            "kpis": self.kpis.snapshot(m) if m in self.kpis.machine_ids else b"",
            "state": self.state.snapshot(m) if m in self.state.machines() else b"",
        }
        return pack(parts)

    def restore(self, data: bytes) -> None:
        parts = unpack(data)
        m = self.machine_id
        if parts.get("anomaly"):
            self.anomaly.restore(m, parts["anomaly"])
        if parts.get("alarms"):
            self.alarms.restore(m, parts["alarms"])
        if parts.get("kpis"):
            self.kpis.restore(m, parts["kpis"])
        if parts.get("state"):
            self.state.restore(m, parts["state"])


class LineTwin:
    """Line KPIs and the schedule trigger for ``line_id``, fed with what its machines forward."""

    def __init__(self, line_id: str, config: TwinConfig) -> None:
        self.line_id = line_id
        order = config.line_order.get(line_id)
        self.kpis = LineKpis(config.kpi, {line_id: list(order)} if order else None)
        self.trigger = ScheduleTrigger(
            ScheduleTriggerConfig(horizon_s=config.horizon_s, line_order=config.line_order or None)
        )

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        out: list[Emit] = []
        if topic == KPIS:
            if record.get("scope") == "MACHINE":
                out.extend(self.kpis.process_one(record))
        elif topic in (STATE, PRODUCTION, ALARMS):
            out.extend(self.trigger.process_one(topic, record))
        return out

    def advance(self, watermark_ms: int) -> list[Emit]:
        return self.kpis.advance(watermark_ms)

    def snapshot(self) -> bytes:
        line = self.line_id
        return pack(
            {
                "kpis": self.kpis.snapshot(line) if line in self.kpis.line_ids else b"",
                "trigger": self.trigger.snapshot(line),
            }
        )

    def restore(self, data: bytes) -> None:
        parts = unpack(data)
        if parts.get("kpis"):
            self.kpis.restore(self.line_id, parts["kpis"])
        if parts.get("trigger"):
            self.trigger.restore(self.line_id, parts["trigger"])


def forwards_to_line(emit_topic: str, record: Record) -> bool:
    """Whether a machine-side record (input or derived) is also a line input."""
    if emit_topic == KPIS:
        return record.get("scope") == "MACHINE"
    return emit_topic in (STATE, PRODUCTION, ALARMS)
