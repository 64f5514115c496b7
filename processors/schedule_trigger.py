"""Ask the scheduler to re-plan a line when a machine goes DOWN or an alarm turns CRITICAL.

Works per line (the pipeline keys its inputs by ``line_id``). From the events it keeps:

- **jobs waiting** = work in progress: parts a station of the line has finished but the line's
  last station has not, and that were not scrapped. Each is a job with the processing time of the
  stations still ahead of it. ``backlog`` adds that many not-yet-started orders needing every
  station (raw material in front of the first station is not visible in the events).
- **station order**: ``line_order`` if given, else learnt from the part flow (a part finished by A
  and then by B makes B follow A).
- **processing times**: the exponentially weighted mean of observed cycle times per station
  (weight ``cycle_alpha``), the ideal cycle time until a station has finished a part.
- **availability**: a DOWN station is unavailable until ``state_since`` + its observed mean time to
  repair (the line's, if it has not been repaired yet; unknown if no station has).
- **stages** (``line_stages``, from a layout whose stations name a ``stage``): parallel machines of
  a stage are alternatives, so a job's operation at a stage may run on any of them. Without it every
  station is a stage of its own.
- **families, due dates, setups**: a part's ``product_family`` and ``due_time`` (when the line's
  production events carry them) go with its job; each machine's current family is the one it last
  worked on; setup times are learnt from SETUP states whose reason is ``setup:<from>-><to>`` (mean
  per family pair). With due dates the request asks for ``weighted_tardiness``, else ``makespan``.

Debounce: one request per DOWN episode of a station and one per alarm reaching CRITICAL; a CRITICAL
alarm of a station whose current DOWN already produced a request is the same incident and asks
for nothing more.

**Maintenance** (``twin.maintenance``): when a machine's estimated remaining useful life stays below
``maintenance_horizon_s`` for ``maintenance_hold_s`` (as the MaintenanceDue rule holds it before
raising), one ``MAINTENANCE`` request asks for a maintenance window: the line's jobs plus a job
``maintenance:<machine>:<component>`` of one operation on that machine (``maintenance_s``, or the
mean of the maintenance stops seen on the line), due at the low end of the estimate's band,
weighted ``maintenance_weight`` so that being late for it costs more than any order, and with the
estimate's correlation id (the same as its MaintenanceDue alarm). It asks again only after the
machine was DOWN (maintained, or failed) or its estimate rose back above 1.5 x the horizon.

>>> trigger = ScheduleTrigger("l")
>>> trigger.process_one(PRODUCTION, {"event_id": "e1", "event_time": 0, "line_id": "l",
...     "machine_id": "m", "part_id": "p1", "cycle_time_s": 40.0, "ideal_cycle_time_s": 42.0,
...     "good": True, "scrap_reason": None, "source": "s", "correlation_id": "e1"})
[]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from processors.base import Emit, Record, derived_id, dump_snapshot, load_snapshot
from twin.topics import ALARMS, MAINTENANCE, MAINTENANCE_JOB, PRODUCTION, SCHEDULE_REQUESTS, STATE

SOURCE = "processor:schedule-trigger"
TOPICS = (STATE, PRODUCTION, ALARMS, MAINTENANCE)
MACHINE_DOWN = "MACHINE_DOWN"
CRITICAL_ALARM = "CRITICAL_ALARM"
MAINTENANCE_DUE = "MAINTENANCE"
REARM = 1.5
"""A machine's maintenance request re-arms once its estimated RUL is above this x the horizon."""

SNAPSHOT_FORMAT = "schedule-trigger"
SNAPSHOT_VERSION = 1

MAX_WIP = 10_000
"""Parts tracked per line; the oldest are forgotten first (a part whose end we never saw)."""
MAX_REMEMBERED_ALARMS = 1_000

__all__ = ["SOURCE", "ScheduleTrigger", "ScheduleTriggerConfig"]


@dataclass(frozen=True, slots=True)
class ScheduleTriggerConfig:
    """Knobs of the trigger; see the module docstring."""

    horizon_s: float = 3600.0
    line_order: Mapping[str, Sequence[str]] | None = None
    line_stages: Mapping[str, Sequence[Sequence[str]]] | None = None
    backlog: int = 0
    max_jobs: int = 100
    cycle_alpha: float = 0.1
    maintenance_horizon_s: float = 3600.0
    maintenance_hold_s: float = 300.0
    maintenance_s: float = 1800.0
    maintenance_weight: float = 10.0


@dataclass(slots=True)
class _Station:
    state: str | None = None
    since: int = 0
    ideal_cycle_s: float | None = None
    mean_cycle_s: float | None = None
    repairs: int = 0
    repair_ms: int = 0
    down_requested: bool = False
    family: str | None = None
    """The product family the machine last worked on (what it is set up for)."""
    reason: str = ""
    maintenance_requested: bool = False
    maintenance_job: dict[str, Any] | None = None
    """The maintenance window asked for and not yet begun: every later request of the line carries it
    too, so a re-plan for another cause does not drop it."""
    rul_short_since: int | None = None
    """Since when the RUL band's low end has been under the maintenance horizon (None: it is not)."""
    maintenances: int = 0
    maintenance_ms: int = 0

    def processing_time(self) -> float | None:
        return self.mean_cycle_s if self.mean_cycle_s is not None else self.ideal_cycle_s

    def mttr_ms(self) -> float | None:
        return self.repair_ms / self.repairs if self.repairs else None


@dataclass(slots=True)
class _Line:
    line_id: str
    stations: dict[str, _Station] = field(default_factory=dict)
    successor: dict[str, str] = field(default_factory=dict)
    wip: dict[str, tuple[str, int]] = field(default_factory=dict)
    """part_id -> (last station that finished it, event time), oldest first."""
    trail: dict[str, str] = field(default_factory=dict)
    """part_id -> last station that finished it, finished parts included (to learn the flow)."""
    requested_alarms: dict[str, None] = field(default_factory=dict)
    parts: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)
    """part_id -> (family, due time ms) of parts in the WIP, when the events carry them."""
    setups: dict[str, tuple[int, int]] = field(default_factory=dict)
    """'<from>-><to>' -> (setups seen, their total ms)."""


class ScheduleTrigger:
    """Turns DOWN reports and CRITICAL alarms of one line into ``schedule.requests`` (key line_id). Pure."""

    def __init__(self, line_id: str, config: ScheduleTriggerConfig | None = None) -> None:
        self.line_id = line_id
        self.config = config or ScheduleTriggerConfig()
        self._line = _Line(line_id)
        self.stats: Counter[str] = Counter()

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        """Apply one state, production or alarm record of the line; other topics give nothing."""
        if topic not in TOPICS:
            return []
        line = self._line
        machine_id = str(record["machine_id"])
        station = line.stations.setdefault(machine_id, _Station())
        t = int(record["event_time"])
        if topic == PRODUCTION:
            self._production(line, machine_id, station, record, t)
            return []
        if topic == STATE:
            return self._state(line, machine_id, station, record, t)
        if topic == MAINTENANCE:
            return self._maintenance(line, machine_id, station, record, t)
        return self._alarm(line, machine_id, station, record, t)

    def advance(self, event_time_ms: int) -> list[Emit]:
        """Nothing is due by time alone: requests answer events."""
        return []

    def snapshot(self) -> bytes:
        """The line's trigger state as a versioned JSON document (see docs/processing.md)."""
        line = self._line
        body = {
            "line_id": self.line_id,
            "stations": {k: asdict(v) for k, v in line.stations.items()},
            "successor": line.successor,
            "wip": [[k, m, t] for k, (m, t) in line.wip.items()],
            "trail": [[k, m] for k, m in line.trail.items()],
            "requested_alarms": list(line.requested_alarms),
            "parts": [[k, f, d] for k, (f, d) in line.parts.items()],
            "setups": {k: list(v) for k, v in line.setups.items()},
        }
        return dump_snapshot(SNAPSHOT_FORMAT, SNAPSHOT_VERSION, body)

    def restore(self, data: bytes) -> None:
        d = load_snapshot(
            data, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, old_names=("factory-twin/schedule-trigger",)
        )
        self._line = _Line(
            line_id=self.line_id,
            stations={k: _Station(**v) for k, v in d["stations"].items()},
            successor=dict(d["successor"]),
            wip={k: (m, int(t)) for k, m, t in d["wip"]},
            trail={k: m for k, m in d["trail"]},
            requested_alarms=dict.fromkeys(d["requested_alarms"]),
            # Absent in snapshots taken before families were tracked: nothing known yet.
            parts={k: (f, None if due is None else int(due)) for k, f, due in d.get("parts", [])},
            setups={k: (int(n), int(ms)) for k, (n, ms) in d.get("setups", {}).items()},
        )

    def order(self) -> list[str]:
        """The line's stations in flow order (configured, or learnt), then any not placed yet."""
        line = self._line
        configured = (self.config.line_order or {}).get(self.line_id)
        if configured is not None:
            chain = list(configured)
        else:
            chain = []
            heads = sorted(set(line.successor) - set(line.successor.values()))
            node = heads[0] if heads else None
            while node is not None and node not in chain:
                chain.append(node)
                node = line.successor.get(node)
        chain += sorted(m for m in line.stations if m not in chain)
        return chain

    # -- internals ----------------------------------------------------------------------------------

    def stages(self) -> list[list[str]]:
        """The line's stages in flow order (configured, else one per station of ``order()``)."""
        configured = (self.config.line_stages or {}).get(self.line_id)
        if configured is not None:
            stages = [list(s) for s in configured]
            placed = {m for s in stages for m in s}
            return stages + [[m] for m in self.order() if m not in placed]
        return [[m] for m in self.order()]

    def _is_last(self, line: _Line, machine_id: str) -> bool:
        stages = (self.config.line_stages or {}).get(line.line_id)
        if stages:
            return machine_id in stages[-1]
        configured = (self.config.line_order or {}).get(line.line_id)
        if configured is not None:
            return bool(configured) and configured[-1] == machine_id
        # Learnt: a station parts flow into and never out of. Until the flow has been seen, a part
        # may be dropped early; it comes back into the WIP when the next station finishes it.
        return machine_id not in line.successor and machine_id in line.successor.values()

    def _production(self, line: _Line, machine_id: str, st: _Station, record: Record, t: int) -> None:
        st.ideal_cycle_s = float(record["ideal_cycle_time_s"])
        cycle = float(record["cycle_time_s"])
        a = self.config.cycle_alpha
        st.mean_cycle_s = cycle if st.mean_cycle_s is None else (1 - a) * st.mean_cycle_s + a * cycle
        part = str(record["part_id"])
        # The trail outlives the WIP entry: a part wrongly taken as finished while the flow was
        # still being learnt teaches the next hop when it shows up downstream.
        previous = line.trail.pop(part, None)
        if previous is not None and previous != machine_id:
            line.successor[previous] = machine_id
        line.trail[part] = machine_id
        if len(line.trail) > MAX_WIP:
            del line.trail[next(iter(line.trail))]
        family = record.get("product_family")
        if family is not None:
            st.family = str(family)
        seen = line.wip.pop(part, None)
        if not record["good"] or self._is_last(line, machine_id):
            line.parts.pop(part, None)
            return  # scrapped here or finished: no longer waiting for the line
        line.wip[part] = (machine_id, seen[1] if seen is not None else t)
        due = record.get("due_time")
        if family is not None or due is not None:
            line.parts[part] = (None if family is None else str(family), None if due is None else int(due))
        if len(line.wip) > MAX_WIP:
            evicted = next(iter(line.wip))
            del line.wip[evicted]
            line.parts.pop(evicted, None)
            self.stats["wip_evicted"] += 1

    def _state(self, line: _Line, machine_id: str, st: _Station, record: Record, t: int) -> list[Emit]:
        state = str(record["state"])
        if st.state == "SETUP" and state != "SETUP" and st.reason.startswith("setup:") and "->" in st.reason:
            pair = st.reason.removeprefix("setup:")
            n, total = line.setups.get(pair, (0, 0))
            line.setups[pair] = (n + 1, total + max(0, t - st.since))
        down_reason, st.reason = st.reason, str(record.get("reason") or "")
        was_down = st.state == "DOWN"
        if was_down and state != "DOWN":
            if down_reason == "maintenance":
                st.maintenances += 1
                st.maintenance_ms += max(0, t - st.since)
            else:
                st.repairs += 1
                st.repair_ms += max(0, t - st.since)
            st.down_requested = False
            st.maintenance_requested = False  # maintained or repaired: a new life
        if state != st.state:
            st.state = state
            st.since = t
        if state == "DOWN":
            st.maintenance_job = None  # the stop it asked for began (or a failure made it moot)
        if state != "DOWN" or was_down:
            return []  # not a new DOWN (a reason change while DOWN, or a replayed report)
        st.down_requested = True
        return [self._request(line, MACHINE_DOWN, machine_id, record, t)]

    def _alarm(self, line: _Line, machine_id: str, st: _Station, record: Record, t: int) -> list[Emit]:
        if record["severity"] != "CRITICAL" or record["status"] not in ("ACTIVE_UNACK", "ACTIVE_ACK"):
            return []
        alarm_id = str(record["alarm_id"])
        if alarm_id in line.requested_alarms:
            return []  # the same alarm again (escalated further, acknowledged): already asked
        line.requested_alarms[alarm_id] = None
        if len(line.requested_alarms) > MAX_REMEMBERED_ALARMS:
            del line.requested_alarms[next(iter(line.requested_alarms))]
        if st.state == "DOWN" and st.down_requested:
            self.stats["critical_while_down"] += 1
            return []
        return [self._request(line, CRITICAL_ALARM, machine_id, record, t)]

    def _maintenance(self, line: _Line, machine_id: str, st: _Station, record: Record, t: int) -> list[Emit]:
        life_s, low_s = float(record["rul_s"]), float(record["rul_low_s"])
        horizon = self.config.maintenance_horizon_s
        if st.maintenance_requested:
            if life_s > REARM * horizon:
                st.maintenance_requested = False
            return []
        if life_s >= horizon:
            st.rul_short_since = None
            return []
        if st.rul_short_since is None:
            st.rul_short_since = t
        if t - st.rul_short_since < self.config.maintenance_hold_s * 1000 or st.state == "DOWN":
            return []  # not a trend yet (as the MaintenanceDue rule's for_s), or already stopped
        st.maintenance_requested = True
        component = str(record.get("component") or "machine")
        window = self._maintenance_s(line)
        job = {
            "job_id": f"{MAINTENANCE_JOB}{machine_id}:{component}",
            "priority": 1000,
            "due_time": t + max(0, round(low_s * 1000)),
            "processing_time_s": {machine_id: window},
            "operations": [
                {"operation_id": "maintenance", "processing_time_s": {machine_id: window}, "after": []}
            ],
            "weight": float(self.config.maintenance_weight),
            "family": None,
        }
        st.maintenance_job = job
        return [self._request(line, MAINTENANCE_DUE, machine_id, record, t)]

    def _maintenance_s(self, line: _Line) -> float:
        n = sum(s.maintenances for s in line.stations.values())
        if not n:
            return float(self.config.maintenance_s)
        return sum(s.maintenance_ms for s in line.stations.values()) / n / 1000

    def _request(self, line: _Line, trigger: str, machine_id: str, record: Record, t: int) -> Emit:
        event_id = str(record["event_id"])
        request_id = derived_id("schedule-request", trigger, machine_id, event_id)
        order = self.order()
        maintenance = [st.maintenance_job for st in line.stations.values() if st.maintenance_job is not None]
        jobs = maintenance + self._jobs(line, self.stages())
        request = {
            "event_id": request_id,
            "event_time": t,
            "source": SOURCE,
            "correlation_id": str(record.get("correlation_id") or event_id),
            "request_id": request_id,
            "line_id": line.line_id,
            "trigger": trigger,
            "trigger_machine_id": machine_id,
            "jobs": jobs,
            "machines": [self._availability(line, m, t) for m in order],
            "horizon_s": float(self.config.horizon_s),
            "setups": [
                {"from_family": a, "to_family": b, "setup_s": total / n / 1000}
                for pair, (n, total) in sorted(line.setups.items())
                for a, b in [pair.split("->", 1)]
            ],
            "objective": "weighted_tardiness" if any(j["due_time"] is not None for j in jobs) else "makespan",
        }
        self.stats[f"requests_{trigger.lower()}"] += 1
        return Emit(SCHEDULE_REQUESTS, line.line_id, request)

    def _jobs(self, line: _Line, stages: list[list[str]]) -> list[dict[str, Any]]:
        position = {m: i for i, stage in enumerate(stages) for m in stage}
        times = {
            m: pt for stage in stages for m in stage if (pt := self._processing_time(line, m)) is not None
        }
        jobs: list[dict[str, Any]] = []
        # Parts furthest along first: finishing them frees buffers and ships product soonest.
        waiting = sorted(line.wip.items(), key=lambda kv: (-position.get(kv[1][0], -1), kv[1][1], kv[0]))
        for part, (last, _) in waiting[: self.config.max_jobs]:
            done = position.get(last)
            ahead = stages[done + 1 :] if done is not None else []
            family, due = line.parts.get(part, (None, None))
            job = _job(part, ahead, times, done + 1 if done is not None else 0, family, due)
            if job is not None:
                jobs.append(job)
        for k in range(min(self.config.backlog, max(0, self.config.max_jobs - len(jobs)))):
            job = _job(f"{line.line_id}:backlog-{k + 1}", stages, times, 0, None, None)
            if job is not None:
                jobs.append(job)
        return jobs

    @staticmethod
    def _processing_time(line: _Line, machine_id: str) -> float | None:
        st = line.stations.get(machine_id)
        return None if st is None else st.processing_time()

    @staticmethod
    def _availability(line: _Line, machine_id: str, t: int) -> dict[str, Any]:
        st = line.stations.get(machine_id) or _Station()
        if st.state != "DOWN":
            return {"machine_id": machine_id, "available": True, "available_from": None, "family": st.family}
        mttr = st.mttr_ms()
        if mttr is None:
            repairs = sum(s.repairs for s in line.stations.values())
            mttr = sum(s.repair_ms for s in line.stations.values()) / repairs if repairs else None
        # A repair already overrunning its mean is expected to end now at the earliest, not in the past.
        until = None if mttr is None else max(t, st.since + round(mttr))
        return {"machine_id": machine_id, "available": False, "available_from": until, "family": st.family}


def _job(
    job_id: str,
    stages: list[list[str]],
    times: Mapping[str, float],
    priority: int,
    family: str | None,
    due: int | None,
) -> dict[str, Any] | None:
    """One job: an operation per stage still ahead (any of the stage's machines with a known time),
    named after its station, or ``a+b`` for parallel machines; None when nothing is ahead."""
    operations: list[dict[str, Any]] = []
    every: dict[str, float] = {}
    for stage in stages:
        options = {m: times[m] for m in stage if m in times}
        if options:
            operations.append({"operation_id": "+".join(stage), "processing_time_s": options, "after": []})
            every.update(options)
    if not operations:
        return None
    return {
        "job_id": job_id,
        "priority": priority,
        "due_time": due,
        "processing_time_s": every,
        "operations": operations,
        "weight": 1.0,
        "family": family,
    }
