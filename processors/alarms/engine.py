"""The alarm engine: rules over telemetry, state and anomalies, with the ThingsBoard alarm lifecycle.

One alarm per machine and alarm type is active at a time. Its status runs ACTIVE_UNACK → ACTIVE_ACK →
CLEARED_ACK, or ACTIVE_UNACK → CLEARED_UNACK → CLEARED_ACK when it clears before anyone acknowledges
it. A record goes to ``twin.alarms`` only when the status or severity changes, never for a new value
of a still-active alarm, so a noisy signal above its threshold does not flood the topic.

>>> engine = AlarmEngine(AlarmRules.default())
>>> engine.active("cnc-1")
[]
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from processors.alarms.conditions import CompiledRule, Signals
from processors.alarms.rules import (
    DEFAULT_RULES,
    FORMATTER,
    SEVERITY_RANK,
    RulesFile,
    parse_rules,
    read_rules,
)
from processors.base import Emit, Record, derived_id, load_snapshot

SOURCE = "processor:alarms"
OUT_TOPIC = "twin.alarms"
TELEMETRY = "factory.telemetry"
STATE = "factory.state"
ANOMALIES = "twin.anomalies"
COMMANDS = "twin.alarm-commands"
TOPICS = (TELEMETRY, STATE, ANOMALIES, COMMANDS)

SNAPSHOT_FORMAT = "factory-twin/alarms"
SNAPSHOT_VERSION = 1

MAX_CLEARED_UNACK = 200
"""Cleared alarms nobody acknowledged, kept per machine so a late ACK still finds them; oldest go first."""

ACTIVE_UNACK = "ACTIVE_UNACK"
ACTIVE_ACK = "ACTIVE_ACK"
CLEARED_UNACK = "CLEARED_UNACK"
CLEARED_ACK = "CLEARED_ACK"


class AlarmRules:
    """A validated, compiled rule set. ``AlarmRules.from_yaml(path)`` or ``AlarmRules.default()``."""

    def __init__(self, spec: RulesFile) -> None:
        self.spec = spec
        self.compiled = [CompiledRule.build(r) for r in spec.rules if r.enabled]
        self.by_id = {c.spec.id: c for c in self.compiled}

    @classmethod
    def from_yaml(cls, path: str | Path) -> AlarmRules:
        """Load a rules file; any problem is a one-line ``ConfigError`` naming the rule and field."""
        return cls(read_rules(Path(path)))

    @classmethod
    def from_dict(cls, data: Any) -> AlarmRules:
        return cls(parse_rules(data))

    @classmethod
    def default(cls) -> AlarmRules:
        """The rules shipped for the simulator's default line (default_rules.yaml)."""
        return cls.from_yaml(DEFAULT_RULES)


@dataclass(slots=True)
class _Alarm:
    """One alarm's current state; ``record()`` renders it for ``twin.alarms``."""

    alarm_id: str
    line_id: str
    machine_id: str
    alarm_type: str
    rule_id: str
    severity: str
    status: str
    start_time: int
    correlation_id: str
    end_time: int | None = None
    ack_time: int | None = None
    acked_by: str | None = None
    clear_time: int | None = None
    cleared_by: str | None = None
    value: float | None = None
    message: str = ""
    details: dict[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in (ACTIVE_UNACK, ACTIVE_ACK)

    def record(self, event_id: str, event_time: int) -> Record:
        r = asdict(self)
        r["details"] = dict(self.details)
        return {"event_id": event_id, "event_time": event_time, "source": SOURCE, **r}


@dataclass(slots=True)
class _RuleState:
    rule: CompiledRule
    armed: bool = True
    """False after a manual clear until the rule's clear condition holds: no instant re-raise."""
    clear_since: int | None = None
    alarm: _Alarm | None = None


@dataclass(slots=True)
class _Trigger:
    """What caused an evaluation: an event (its id and correlation), or time alone (``event`` None)."""

    time: int
    event: tuple[str, str] | None


def _cause_id(trig: _Trigger) -> str:
    """The triggering event's id, or the due time for a change that time alone brought about."""
    return trig.event[0] if trig.event is not None else f"@{trig.time}"


class _Machine:
    __slots__ = ("alarms", "clock", "resolved_for", "rules", "signals")

    def __init__(self, machine_id: str) -> None:
        self.signals = Signals(machine_id)
        self.rules: dict[str, _RuleState] = {}
        """Per alarm type, the rule state of the first rule (file order) that selects this machine."""
        self.alarms: dict[str, _Alarm] = {}
        """Active and cleared-unacknowledged alarms by id, oldest first."""
        self.clock: int | None = None
        self.resolved_for: tuple[str | None, str | None] | None = None


class AlarmEngine:
    """Raises, escalates and clears alarms from rules; applies ACK/CLEAR commands. Pure, event-time.

    Counters in ``stats``: events, emitted, ignored commands by reason (``command_unknown_alarm``,
    ``command_no_change``), and so on.
    """

    def __init__(self, rules: AlarmRules) -> None:
        self._rules = rules
        self._machines: dict[str, _Machine] = {}
        self.stats: Counter[str] = Counter()

    # -- public interface ---------------------------------------------------------------------------

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        """Apply one record; return the alarm records to publish on ``twin.alarms`` (key machine_id)."""
        if topic == COMMANDS:
            return self._command(record)
        if topic not in TOPICS:
            msg = f"AlarmEngine does not consume {topic!r} (only {', '.join(TOPICS)})"
            raise ValueError(msg)
        self.stats["events"] += 1
        m = self._machine(record["machine_id"])
        s = m.signals
        t = int(record["event_time"])
        out = self._run_deadlines(m, t)
        if record.get("line_id"):
            s.line_id = record["line_id"]
        if topic == TELEMETRY:
            if record.get("machine_type"):
                s.machine_type = record["machine_type"]
            values, units = s.values, s.units
            for c in record["channels"]:
                values[c["name"]] = c["value"]
                units[c["name"]] = c["unit"]
            s.telemetry_seen = True
        self._resolve(m)
        if topic == STATE:
            # Values as of the end of the old state: a cleared MachineDown keeps how long it lasted.
            self._refresh_values(m, t if m.clock is None else max(t, m.clock))
            s.state = record["state"]
            s.state_since = t
            s.reason = record.get("reason") or ""
        elif topic == ANOMALIES:
            for rs in m.rules.values():
                for leaf in rs.rule.anomaly_leaves:
                    if leaf.matches(record):
                        s.hits[leaf.key] = (t, float(record["score"]), str(record["detector"]))
        event = (str(record["event_id"]), str(record.get("correlation_id") or record["event_id"]))
        s.cause = event
        # A late event is judged at the machine's clock: its values are the newest we have.
        at = t if m.clock is None else max(t, m.clock)
        out += self._evaluate(m, _Trigger(at, event))
        return out

    def advance(self, machine_id: str, now_ms: int) -> list[Emit]:
        """Fire what is due by event time ``now_ms`` without new input: duration rules, escalation,
        clears after their minimum duration. Each fires at its exact due time, so how often the
        pipeline ticks does not change ids or timestamps."""
        m = self._machines.get(machine_id)
        return [] if m is None else self._run_deadlines(m, now_ms)

    def active(self, machine_id: str) -> list[Record]:
        """The machine's alarms not yet cleared, as alarm records (oldest first)."""
        m = self._machines.get(machine_id)
        if m is None:
            return []
        return [
            a.record(derived_id("alarm-event", a.alarm_id, a.status, a.severity, "current"), a.start_time)
            for a in m.alarms.values()
            if a.active
        ]

    def machines(self) -> list[str]:
        return sorted(self._machines)

    def snapshot(self, machine_id: str) -> bytes:
        """The machine's engine state as JSON bytes (with a format version), for a changelog/table."""
        m = self._machines.get(machine_id) or _Machine(machine_id)
        doc = {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "machine_id": machine_id,
            "clock": m.clock,
            "signals": m.signals.to_json(),
            "rules": {
                alarm_type: {
                    "rule_id": rs.rule.spec.id,
                    "armed": rs.armed,
                    "clear_since": rs.clear_since,
                    "alarm_id": None if rs.alarm is None else rs.alarm.alarm_id,
                }
                for alarm_type, rs in m.rules.items()
            },
            "alarms": [asdict(a) for a in m.alarms.values()],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    def restore(self, machine_id: str, data: bytes) -> None:
        """Replace the machine's state with a snapshot. Rules are matched by id: state of a rule that
        is gone is dropped, its still-active alarm stays (an operator can still ack or clear it)."""
        doc = load_snapshot(data, SNAPSHOT_FORMAT, SNAPSHOT_VERSION)
        m = _Machine(machine_id)
        m.clock = doc["clock"]
        m.signals = Signals.from_json(machine_id, doc["signals"])
        m.alarms = {a["alarm_id"]: _Alarm(**a) for a in doc["alarms"]}
        self._resolve(m)
        known = set().union(*(rs.rule.leaf_keys for rs in m.rules.values()))
        s = m.signals
        s.since = {k: v for k, v in s.since.items() if k in known}
        s.causes = {k: v for k, v in s.causes.items() if k in known}
        s.hits = {k: v for k, v in s.hits.items() if k in known}
        for alarm_type, saved in doc["rules"].items():
            rs = m.rules.get(alarm_type)
            if rs is None:
                continue
            rs.armed = bool(saved["armed"])
            if saved["rule_id"] == rs.rule.spec.id:
                rs.clear_since = saved["clear_since"]
            alarm = m.alarms.get(saved["alarm_id"]) if saved["alarm_id"] else None
            rs.alarm = alarm if alarm is not None and alarm.active else None
        self._machines[machine_id] = m

    # -- evaluation ---------------------------------------------------------------------------------

    def _machine(self, machine_id: str) -> _Machine:
        m = self._machines.get(machine_id)
        if m is None:
            m = self._machines[machine_id] = _Machine(machine_id)
        return m

    def _resolve(self, m: _Machine) -> None:
        """Pick, per alarm type, the first rule selecting this machine (more specific rules go first)."""
        s = m.signals
        key = (s.line_id, s.machine_type)
        if key == m.resolved_for:
            return
        m.resolved_for = key
        chosen: dict[str, _RuleState] = {}
        for rule in self._rules.compiled:
            alarm_type = rule.spec.alarm_type
            if alarm_type in chosen or not rule.spec.select.matches(s.machine_id, s.machine_type, s.line_id):
                continue
            old = m.rules.get(alarm_type)
            if old is not None and old.rule is rule:
                chosen[alarm_type] = old
            else:
                # Another rule now owns the type (the machine's type became known): the alarm carries over.
                chosen[alarm_type] = _RuleState(rule, alarm=None if old is None else old.alarm)
        m.rules = chosen

    @staticmethod
    def _refresh_values(m: _Machine, t: int) -> None:
        for rs in m.rules.values():
            primary = rs.rule.primary
            if rs.alarm is not None and primary is not None:
                value = primary.value(m.signals, t)
                if value is not None:
                    rs.alarm.value = value

    def _run_deadlines(self, m: _Machine, until: int) -> list[Emit]:
        out: list[Emit] = []
        s = m.signals
        while s.deadline is not None and s.deadline <= until:
            out += self._evaluate(m, _Trigger(s.deadline, None))
        return out

    def _evaluate(self, m: _Machine, trig: _Trigger) -> list[Emit]:
        m.signals.deadline = None
        out: list[Emit] = []
        for rs in m.rules.values():
            self._step(m, rs, trig, out)
        m.clock = trig.time
        return out

    def _step(self, m: _Machine, rs: _RuleState, trig: _Trigger, out: list[Emit]) -> None:
        s, rule, t = m.signals, rs.rule, trig.time
        raised = rule.raise_.eval(s, t)
        cleared = rule.clear.eval(s, t) if rule.clear is not None else None if raised is None else not raised
        alarm = rs.alarm
        if alarm is None:
            if not rs.armed:
                if cleared is not True:
                    return
                rs.armed = True
            if raised is True:
                self._raise(m, rs, trig, out)
            return
        primary = rule.primary
        if primary is not None and (value := primary.value(s, t)) is not None:
            alarm.value = value
        # Hysteresis: only a clear condition that holds (and the raise condition not) for
        # clear_after_s clears; a value hovering between the two thresholds keeps the alarm as it is.
        if cleared is True and raised is not True:
            if rs.clear_since is None:
                rs.clear_since = t
            due = rs.clear_since + rule.clear_after_ms
            if t >= due:
                alarm.end_time = rs.clear_since
                alarm.clear_time = t
                alarm.cleared_by = "rule"
                alarm.status = CLEARED_ACK if alarm.status == ACTIVE_ACK else CLEARED_UNACK
                rs.alarm = None
                rs.clear_since = None
                self._retire(m, alarm)
                out.append(self._emit(m, alarm, trig, _cause_id(trig)))
                return
            s.note_deadline(due)
        else:
            rs.clear_since = None
        if self._escalate(s, rs, alarm, t):
            out.append(self._emit(m, alarm, trig, _cause_id(trig)))

    def _escalate(self, s: Signals, rs: _RuleState, alarm: _Alarm, t: int) -> bool:
        """Raise the alarm's severity to the most severe step reached; severity never drops while active."""
        target = alarm.severity
        for step in rs.rule.steps:
            reached = True
            if step.after_ms is not None:
                due = alarm.start_time + step.after_ms
                if t < due:
                    reached = False
                    if SEVERITY_RANK[step.severity] < SEVERITY_RANK[target]:
                        s.note_deadline(due)
            if step.when is not None:
                reached = step.when.eval(s, t) is True and reached
            if reached and SEVERITY_RANK[step.severity] < SEVERITY_RANK[target]:
                target = step.severity
        if target == alarm.severity:
            return False
        alarm.severity = target
        return True

    def _raise(self, m: _Machine, rs: _RuleState, trig: _Trigger, out: list[Emit]) -> None:
        s, rule, t = m.signals, rs.rule, trig.time
        event = trig.event
        if event is None:
            # Raised by time alone (DOWN for 2 minutes): the cause is the event that started the
            # most recent of the conditions, e.g. the DOWN report; its id keeps the record replayable.
            started = [(s.since[leaf.key], leaf.key) for leaf in rule.raise_leaves if leaf.key in s.since]
            event = s.causes.get(max(started)[1], s.cause) if started else s.cause
        spec = rule.spec
        primary = rule.primary
        details = dict(primary.details()) if primary is not None else {}
        details.update(spec.details)
        alarm = _Alarm(
            alarm_id=derived_id("alarm", s.machine_id, spec.alarm_type, t),
            line_id=s.line_id or "",
            machine_id=s.machine_id,
            alarm_type=spec.alarm_type,
            rule_id=spec.id,
            severity=spec.severity,
            status=ACTIVE_UNACK,
            start_time=t,
            correlation_id=event[1] or event[0],
            value=None if primary is None else primary.value(s, t),
            details=details,
        )
        self._escalate(s, rs, alarm, t)
        rs.alarm = alarm
        rs.clear_since = None
        m.alarms[alarm.alarm_id] = alarm
        self.stats["raised"] += 1
        out.append(self._emit(m, alarm, _Trigger(t, event), event[0]))

    def _retire(self, m: _Machine, alarm: _Alarm) -> None:
        """Forget a fully closed alarm; bound the cleared-but-unacknowledged ones kept for a late ACK."""
        if alarm.status == CLEARED_ACK:
            m.alarms.pop(alarm.alarm_id, None)
            return
        cleared = [a for a in m.alarms.values() if not a.active]
        for old in cleared[: max(0, len(cleared) - MAX_CLEARED_UNACK)]:
            del m.alarms[old.alarm_id]
            self.stats["cleared_unack_evicted"] += 1

    def _emit(self, m: _Machine, alarm: _Alarm, trig: _Trigger, cause_id: str) -> Emit:
        s = m.signals
        primary = self._rules.by_id.get(alarm.rule_id)
        unit = primary.primary.unit(s) if primary is not None and primary.primary is not None else ""
        spec = primary.spec if primary is not None else None
        if spec is not None and spec.message:
            fields = {
                "machine_id": alarm.machine_id,
                "machine_type": s.machine_type or "",
                "line_id": alarm.line_id,
                "alarm_type": alarm.alarm_type,
                "rule_id": alarm.rule_id,
                "severity": alarm.severity,
                "value": alarm.value,
                "unit": unit,
            }
            alarm.message = FORMATTER.vformat(spec.message, (), fields)
        elif not alarm.message:
            alarm.message = f"{alarm.alarm_type} on {alarm.machine_id}"
        event_id = derived_id("alarm-event", alarm.alarm_id, alarm.status, alarm.severity, cause_id)
        self.stats["emitted"] += 1
        return Emit(OUT_TOPIC, alarm.machine_id, alarm.record(event_id, trig.time))

    # -- commands -----------------------------------------------------------------------------------

    def _command(self, record: Record) -> list[Emit]:
        """ACK or CLEAR one alarm. Commands do not move the machine's event-time clock: they come from
        an operator's clock, not the machine's."""
        self.stats["commands"] += 1
        m = self._machines.get(record["machine_id"])
        alarm = m.alarms.get(str(record["alarm_id"])) if m is not None else None
        if m is None or alarm is None:
            # Unknown, or closed long ago (CLEARED_ACK alarms are forgotten): nothing to do.
            self.stats["command_unknown_alarm"] += 1
            return []
        t, user, command = int(record["event_time"]), str(record["user"]), record["command"]
        comment = record.get("comment")
        if command == "ACK":
            if alarm.status not in (ACTIVE_UNACK, CLEARED_UNACK):
                self.stats["command_no_change"] += 1
                return []
            alarm.status = ACTIVE_ACK if alarm.status == ACTIVE_UNACK else CLEARED_ACK
            alarm.ack_time = t
            alarm.acked_by = user
            if comment:
                alarm.details["ack_comment"] = comment
        elif command == "CLEAR":
            if not alarm.active:
                self.stats["command_no_change"] += 1
                return []
            alarm.status = CLEARED_ACK if alarm.status == ACTIVE_ACK else CLEARED_UNACK
            alarm.clear_time = t
            alarm.end_time = t
            alarm.cleared_by = user
            if comment:
                alarm.details["clear_comment"] = comment
            rs = m.rules.get(alarm.alarm_type)
            if rs is not None and rs.alarm is alarm:
                # The condition may still hold; re-raising at the next reading would undo the
                # operator's clear. The rule re-arms once its clear condition is met.
                rs.alarm = None
                rs.armed = False
                rs.clear_since = None
        else:
            self.stats["command_unknown"] += 1
            return []
        self.stats[f"command_{command.lower()}"] += 1
        self._retire(m, alarm)
        return [self._emit(m, alarm, _Trigger(t, None), str(record["event_id"]))]
