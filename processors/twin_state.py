"""The live twin: the latest consolidated state of each machine, for the compacted ``twin.state`` topic.

State, since when, the latest value of every channel, the alarms not yet cleared, the OEE of the
latest closed MACHINE-scope KPI window, and good/scrap counts. A change of state, alarms or OEE is
published at once; telemetry and part counts at most once per ``min_interval_s`` of event time per
machine, so a 1 Hz sensor stream does not become a 1 Hz stream per viewer at the gateway.

>>> tracker = TwinStateTracker("cnc-1")
>>> tracker.current() is None
True
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from processors.base import Emit, Record, derived_id, dump_snapshot, load_snapshot
from twin.topics import ALARMS, KPIS, PRODUCTION, STATE, TELEMETRY, TWIN_STATE

SOURCE = "processor:twin-state"
TOPICS = (TELEMETRY, STATE, PRODUCTION, ALARMS, KPIS)

SNAPSHOT_FORMAT = "twin-state"
SNAPSHOT_VERSION = 1

__all__ = ["SOURCE", "TOPICS", "TwinStateConfig", "TwinStateTracker"]


@dataclass(frozen=True, slots=True)
class TwinStateConfig:
    """``min_interval_s``: least event time between telemetry-driven updates of one machine.
    ``oee_window_s``: KPI window size whose OEE to show; None takes the smallest size seen."""

    min_interval_s: float = 1.0
    oee_window_s: int | None = None


@dataclass(slots=True)
class _Twin:
    machine_id: str
    line_id: str = ""
    machine_type: str = ""
    state: str | None = None
    state_since: int = 0
    signals: dict[str, tuple[float | None, str]] = field(default_factory=dict)
    alarms: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """alarm_id -> (alarm_type, severity, status), in raise order."""
    oee: float | None = None
    oee_window: tuple[int, int] | None = None
    """(window_size_s, window_end) of the OEE shown."""
    parts_good: int = 0
    parts_scrap: int = 0
    first_time: int | None = None
    last_event: tuple[str, str, int] = ("", "", 0)
    """(event_id, correlation_id, event_time) of the latest event applied."""
    last_emit: int | None = None
    """Event time of the latest record published."""


class TwinStateTracker:
    """Consolidates one machine's streams into ``twin_state`` records (key machine_id). Pure, event-time."""

    def __init__(self, machine_id: str, config: TwinStateConfig | None = None) -> None:
        self.machine_id = machine_id
        self.config = config or TwinStateConfig()
        self._min_interval_ms = round(self.config.min_interval_s * 1000)
        self._tw = _Twin(machine_id)
        self.stats: Counter[str] = Counter()

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        """Apply one record; return the twin_state record to publish, if this change warrants one."""
        if topic == KPIS:
            return self._kpi(record)
        if topic not in TOPICS:
            return []
        tw = self._tw
        t = int(record["event_time"])
        self._touch(tw, record, t)
        now = False
        if topic == TELEMETRY:
            if record.get("machine_type"):
                tw.machine_type = record["machine_type"]
            for c in record["channels"]:
                tw.signals[c["name"]] = (c["value"], c["unit"])
        elif topic == STATE:
            now = record["state"] != tw.state
            tw.state = record["state"]
            tw.state_since = t
        elif topic == PRODUCTION:
            if record["good"]:
                tw.parts_good += 1
            else:
                tw.parts_scrap += 1
        else:  # twin.alarms
            now = self._alarm(tw, record)
        if now or tw.last_emit is None or t - tw.last_emit >= self._min_interval_ms:
            return [self._emit(tw)]
        self.stats["throttled"] += 1
        return []

    def advance(self, event_time_ms: int) -> list[Emit]:
        """Nothing is due by time alone: the twin changes with its inputs."""
        return []

    def current(self) -> Record | None:
        """The machine's latest consolidated state (including updates not yet published); None
        before anything was heard of it."""
        tw = self._tw
        return None if tw.first_time is None else self._record(tw)

    def snapshot(self) -> bytes:
        """The twin as a versioned JSON document (see docs/processing.md)."""
        tw = self._tw
        body: dict[str, Any] = {
            "machine_id": tw.machine_id,
            "line_id": tw.line_id,
            "machine_type": tw.machine_type,
            "state": tw.state,
            "state_since": tw.state_since,
            "signals": [[k, v, u] for k, (v, u) in tw.signals.items()],
            "alarms": [[k, *v] for k, v in tw.alarms.items()],
            "oee": tw.oee,
            "oee_window": tw.oee_window,
            "parts_good": tw.parts_good,
            "parts_scrap": tw.parts_scrap,
            "first_time": tw.first_time,
            "last_event": list(tw.last_event),
            "last_emit": tw.last_emit,
        }
        return dump_snapshot(SNAPSHOT_FORMAT, SNAPSHOT_VERSION, body)

    def restore(self, data: bytes) -> None:
        d = load_snapshot(data, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, old_names=("factory-twin/twin-state",))
        window = d["oee_window"]
        self._tw = _Twin(
            machine_id=self.machine_id,
            line_id=d["line_id"],
            machine_type=d["machine_type"],
            state=d["state"],
            state_since=d["state_since"],
            signals={k: (v, u) for k, v, u in d["signals"]},
            alarms={a[0]: (a[1], a[2], a[3]) for a in d["alarms"]},
            oee=d["oee"],
            oee_window=None if window is None else (int(window[0]), int(window[1])),
            parts_good=d["parts_good"],
            parts_scrap=d["parts_scrap"],
            first_time=d["first_time"],
            last_event=(str(d["last_event"][0]), str(d["last_event"][1]), int(d["last_event"][2])),
            last_emit=d["last_emit"],
        )

    # -- internals ----------------------------------------------------------------------------------

    @staticmethod
    def _touch(tw: _Twin, record: Record, t: int) -> None:
        if record.get("line_id"):
            tw.line_id = record["line_id"]
        if tw.first_time is None:
            tw.first_time = t
        event_id = str(record["event_id"])
        tw.last_event = (event_id, str(record.get("correlation_id") or event_id), t)

    @staticmethod
    def _alarm(tw: _Twin, record: Record) -> bool:
        """Track the alarm list; True when it changed (raised, escalated, acked, cleared)."""
        alarm_id = str(record["alarm_id"])
        before = tw.alarms.get(alarm_id)
        if record["status"] in ("ACTIVE_UNACK", "ACTIVE_ACK"):
            now = (str(record["alarm_type"]), str(record["severity"]), str(record["status"]))
            tw.alarms[alarm_id] = now
            return now != before
        return tw.alarms.pop(alarm_id, None) is not None

    def _kpi(self, record: Record) -> list[Emit]:
        if record["scope"] != "MACHINE":
            return []
        size, end = int(record["window_size_s"]), int(record["window_end"])
        wanted = self.config.oee_window_s
        tw = self._tw
        shown = tw.oee_window
        if wanted is not None and size != wanted:
            return []
        if wanted is None and shown is not None and size > shown[0]:
            return []  # a longer window than the one shown: the shortest is the liveliest
        if shown is not None and size == shown[0] and end <= shown[1]:
            self.stats["kpi_stale"] += 1
            return []  # an older (or repeated) window than the one shown
        self._touch(tw, record, int(record["event_time"]))
        changed = record["oee"] != tw.oee
        tw.oee = float(record["oee"])
        tw.oee_window = (size, end)
        return [self._emit(tw)] if changed else []

    def _record(self, tw: _Twin) -> Record:
        event_id, correlation_id, t = tw.last_event
        return {
            "event_id": derived_id("twin-state", tw.machine_id, event_id),
            "event_time": t,
            "source": SOURCE,
            "correlation_id": correlation_id,
            "line_id": tw.line_id,
            "machine_id": tw.machine_id,
            "machine_type": tw.machine_type,
            # Before the first state report the machine is shown IDLE since it was first heard of.
            "state": tw.state or "IDLE",
            "state_since": tw.state_since if tw.state is not None else tw.first_time or t,
            "signals": [{"name": k, "value": v, "unit": u} for k, (v, u) in tw.signals.items()],
            "active_alarms": [
                {"alarm_id": k, "alarm_type": a, "severity": sev, "status": st}
                for k, (a, sev, st) in tw.alarms.items()
            ],
            "oee": tw.oee,
            "parts_good": tw.parts_good,
            "parts_scrap": tw.parts_scrap,
        }

    def _emit(self, tw: _Twin) -> Emit:
        tw.last_emit = max(tw.last_event[2], tw.last_emit or tw.last_event[2])
        self.stats["emitted"] += 1
        return Emit(TWIN_STATE, tw.machine_id, self._record(tw))
