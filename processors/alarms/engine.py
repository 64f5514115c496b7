"""The alarm engine: rules over telemetry, state and anomalies, with the ThingsBoard alarm lifecycle.

One engine per machine. One alarm per alarm type is active at a time. Its status runs ACTIVE_UNACK →
ACTIVE_ACK → CLEARED_ACK, or ACTIVE_UNACK → CLEARED_UNACK → CLEARED_ACK when it clears before anyone
acknowledges it. A record goes to ``twin.alarms`` only when the status or severity changes, never
for a new value of a still-active alarm, so a noisy signal above its threshold does not flood the
topic. An alarm keeps the value and message that raised it for its whole life; ``peak_value`` is
the worst value while it was active and ``clear_value`` the value at which the rule cleared it.

>>> engine = AlarmEngine("cnc-1", AlarmRules.default())
>>> engine.active()
[]
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from processors.alarms.conditions import CompiledRule, Leaf, Signals
from processors.alarms.rules import (
    DEFAULT_RULES,
    FORMATTER,
    SEVERITY_RANK,
    RulesFile,
    parse_rules,
    read_rules,
)
from processors.base import Emit, Record, derived_id, dump_snapshot, load_snapshot
from twin.topics import ALARM_COMMANDS, ALARMS, ANOMALIES, MAINTENANCE, STATE, TELEMETRY
from twin.units import human_duration

log = logging.getLogger(__name__)
WATCH_READINGS = 5000  # readings after which a rule's channel nobody reported is warned about

SOURCE = "processor:alarms"
TOPICS = (TELEMETRY, STATE, ANOMALIES, MAINTENANCE, ALARM_COMMANDS)

SNAPSHOT_FORMAT = "alarms"
SNAPSHOT_VERSION = 2
"""2: alarms carry ``peak_value`` and ``clear_value``; ``value`` and ``message`` are the raising ones."""

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
        # A rule naming a channel its machines do not report is a typo (or the wrong machines): after
        # the first WATCH_READINGS readings (of every engine sharing these rules), one warning each.
        # Only rules that select machines by id, type or line: a worker owns some partitions, so
        # what "all machines" report is more than it sees.
        self.watching = any(c.channels and _selective(c) for c in self.compiled)
        self.readings = 0
        self.seen: dict[str, tuple[str, str, set[str]]] = {}  # machine -> type, line, channels reported
        self.unseen: dict[str, list[str]] = {}  # channel -> ids of the rules naming it, once known

    def watch(self, record: Record) -> None:
        """Note the channels of one reading; after ``WATCH_READINGS``, warn once about the rules
        whose selected machines (those this worker saw) never reported a channel they name."""
        machine = self.seen.get(record["machine_id"])
        if machine is None:
            machine = self.seen[record["machine_id"]] = (
                str(record.get("machine_type") or ""),
                str(record.get("line_id") or ""),
                set(),
            )
        machine[2].update(c["name"] for c in record["channels"] if c["value"] is not None)
        self.readings += 1
        if self.readings < WATCH_READINGS:
            return
        self.watching = False
        for rule in self.compiled:
            if not _selective(rule):
                continue
            selected = [
                channels
                for machine_id, (machine_type, line_id, channels) in self.seen.items()
                if rule.spec.select.matches(machine_id, machine_type, line_id)
            ]
            if not selected:
                continue  # none of its machines is on this worker's partitions
            reported = set().union(*selected)
            for channel in sorted(rule.channels - reported):
                self.unseen.setdefault(channel, []).append(rule.spec.id)
        for channel, ids in self.unseen.items():
            log.warning(
                "alarm rule%s %s name%s channel %r, which none of the machines %s select%s reported a value "
                "for in the first %d readings: a typo in the rules, or the wrong machines selected?",
                "s" if len(ids) > 1 else "", ", ".join(ids), "" if len(ids) > 1 else "s", channel,
                "they" if len(ids) > 1 else "it", "" if len(ids) > 1 else "s", WATCH_READINGS,
            )  # fmt: skip

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


def _selective(rule: CompiledRule) -> bool:
    select = rule.spec.select
    return bool(select.machines or select.machine_types or select.lines)


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
    """The value that raised it, kept for its whole life."""
    peak_value: float | None = None
    """The worst value while active: furthest past the limit in the rule's direction."""
    clear_value: float | None = None
    """The value at which the rule cleared it (None while active, or when an operator cleared it)."""
    message: str = ""
    details: dict[str, str] = field(default_factory=dict)
    version: int = 0
    """The lifecycle version of the last record: 1 raised, +1 per change. Stores order an alarm's
    records by it, not by their clocks (an ACK carries the operator's clock, which can be behind
    the machine's)."""

    @property
    def active(self) -> bool:
        return self.status in (ACTIVE_UNACK, ACTIVE_ACK)

    def observe(self, leaf: Leaf, value: float | None) -> None:
        """A newer value of the signal while active: it may be the new peak."""
        if value is None:
            return
        if self.peak_value is None or leaf.worse(self.peak_value, value):
            self.peak_value = value

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
    __slots__ = ("alarms", "clock", "ending", "resolved_for", "rules", "signals")

    def __init__(self, machine_id: str) -> None:
        self.signals = Signals(machine_id)
        self.rules: dict[str, _RuleState] = {}
        """Per alarm type, the rule state of the first rule (file order) that selects this machine."""
        self.alarms: dict[str, _Alarm] = {}
        """Active and cleared-unacknowledged alarms by id, oldest first."""
        self.clock: int | None = None
        self.resolved_for: tuple[str | None, str | None] | None = None
        self.ending: dict[str, float] = {}
        """Per alarm type, its value as the old state ended, while a state report is applied (a
        cleared MachineDown's clear value: how long the machine was down). Not part of a snapshot."""


class AlarmEngine:
    """Raises, escalates and clears the alarms of one machine from rules; applies ACK/CLEAR commands.
    Pure, event-time.

    Counters in ``stats``: events, emitted, ignored commands by reason (``command_unknown_alarm``,
    ``command_no_change``), and so on.
    """

    def __init__(self, machine_id: str, rules: AlarmRules) -> None:
        self.machine_id = machine_id
        self._rules = rules
        self._m = _Machine(machine_id)
        self.stats: Counter[str] = Counter()

    # -- public interface ---------------------------------------------------------------------------

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        """Apply one record; return the alarm records to publish on ``twin.alarms`` (key machine_id).
        Topics other than telemetry, state, anomalies, RUL estimates and alarm commands give nothing."""
        if topic == ALARM_COMMANDS:
            return self._command(record)
        if topic not in TOPICS:
            return []
        self.stats["events"] += 1
        m = self._m
        s = m.signals
        t = int(record["event_time"])
        out = self._run_deadlines(m, t)
        if record.get("line_id"):
            s.line_id = record["line_id"]
        if topic == TELEMETRY:
            if record.get("machine_type"):
                s.machine_type = record["machine_type"]
            if self._rules.watching:
                self._rules.watch(record)
            values, units = s.values, s.units
            for c in record["channels"]:
                values[c["name"]] = c["value"]
                units[c["name"]] = c["unit"]
            s.telemetry_seen = True
        self._resolve(m)
        if topic != TELEMETRY:
            self._note(m, topic, record, t)
        event = (str(record["event_id"]), str(record.get("correlation_id") or record["event_id"]))
        s.cause = event
        # A late event is judged at the machine's clock: its values are the newest we have.
        at = t if m.clock is None else max(t, m.clock)
        out += self._evaluate(m, _Trigger(at, event))
        m.ending.clear()
        return out

    def _note(self, m: _Machine, topic: str, record: Record, t: int) -> None:
        """What a state change, an anomaly or a RUL estimate tells the machine's signals."""
        s = m.signals
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
        elif topic == MAINTENANCE:
            s.rul[str(record["component"])] = (
                t, float(record["rul_low_s"]), float(record["rul_s"]), float(record["rul_high_s"]),
            )  # fmt: skip

    def advance(self, event_time_ms: int) -> list[Emit]:
        """Fire what is due by event time ``event_time_ms`` without new input: duration rules,
        escalation, clears after their minimum duration. Each fires at its exact due time, so how
        often the pipeline ticks does not change ids or timestamps."""
        return self._run_deadlines(self._m, event_time_ms)

    def active(self) -> list[Record]:
        """The machine's alarms not yet cleared, as alarm records (oldest first)."""
        return [
            a.record(derived_id("alarm-event", a.alarm_id, a.status, a.severity, "current"), a.start_time)
            for a in self._m.alarms.values()
            if a.active
        ]

    def snapshot(self) -> bytes:
        """The engine's state as a versioned JSON document (see docs/processing.md)."""
        m = self._m
        body = {
            "machine_id": self.machine_id,
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
        return dump_snapshot(SNAPSHOT_FORMAT, SNAPSHOT_VERSION, body)

    def restore(self, data: bytes) -> None:
        """Replace the state with a snapshot (version 1 is upgraded). Rules are matched by id: state
        of a rule that is gone is dropped, its still-active alarm stays (an operator can still ack or
        clear it)."""
        doc = load_snapshot(
            data, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, {1: _upgrade_v1}, old_names=("factory-twin/alarms",)
        )
        machine_id = self.machine_id
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
        self._m = m

    # -- evaluation ---------------------------------------------------------------------------------

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
        for alarm_type, rs in m.rules.items():
            primary = rs.rule.primary
            if rs.alarm is not None and primary is not None:
                value = primary.value(m.signals, t)
                if value is not None:
                    rs.alarm.observe(primary, value)
                    m.ending[alarm_type] = value

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
        value = None if primary is None else primary.value(s, t)
        if primary is not None:
            alarm.observe(primary, value)
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
                alarm.clear_value = value if value is not None else m.ending.get(rule.spec.alarm_type)
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
        value = None if primary is None else primary.value(s, t)
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
            value=value,
            peak_value=value,
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
        self._compose_message(m, alarm, trig.time)
        event_id = derived_id("alarm-event", alarm.alarm_id, alarm.status, alarm.severity, cause_id)
        alarm.version += 1
        self.stats["emitted"] += 1
        return Emit(ALARMS, alarm.machine_id, alarm.record(event_id, trig.time))

    def _compose_message(self, m: _Machine, alarm: _Alarm, t: int) -> None:
        """The alarm's message for the record at ``t``: the rule's template with the raising value,
        the peak so far and how long it has been active. A rule gone from the rules file leaves the
        message it had."""
        s = m.signals
        rule = self._rules.by_id.get(alarm.rule_id)
        if rule is None:
            alarm.message = alarm.message or f"{alarm.alarm_type} on {alarm.machine_id}"
            return
        primary = rule.primary
        unit = primary.unit(s) if primary is not None else ""
        spec = rule.spec
        if spec.message:
            end = alarm.end_time if alarm.end_time is not None else t
            fields = {
                "machine_id": alarm.machine_id,
                "machine_type": s.machine_type or "",
                "line_id": alarm.line_id,
                "alarm_type": alarm.alarm_type,
                "rule_id": alarm.rule_id,
                "severity": alarm.severity,
                "value": alarm.value,
                "unit": unit,
                "channel": getattr(primary, "channel", "") or "",
                "peak": alarm.peak_value,
                "value_duration": None if alarm.value is None else human_duration(alarm.value),
                "peak_duration": None if alarm.peak_value is None else human_duration(alarm.peak_value),
                "duration": human_duration(max(0, end - alarm.start_time) / 1000),
            }
            alarm.message = FORMATTER.vformat(spec.message, (), fields)
        else:
            alarm.message = f"{alarm.alarm_type} on {alarm.machine_id}"

    # -- commands -----------------------------------------------------------------------------------

    def _command(self, record: Record) -> list[Emit]:
        """ACK or CLEAR one alarm. Commands do not move the machine's event-time clock: they come from
        an operator's clock, not the machine's."""
        self.stats["commands"] += 1
        m = self._m
        alarm = m.alarms.get(str(record["alarm_id"]))
        if alarm is None:
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


def _upgrade_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept one ``value`` per alarm, overwritten while active and at the clear: it becomes
    the peak as far as known, and for an alarm the rule cleared, its clear value too. The raising
    value is lost; ``value`` keeps the last one."""
    for alarm in doc["alarms"]:
        value = alarm.get("value")
        cleared_by_rule = (
            alarm.get("status") in (CLEARED_UNACK, CLEARED_ACK) and alarm.get("cleared_by") == "rule"
        )
        alarm.setdefault("peak_value", value)
        alarm.setdefault("clear_value", value if cleared_by_rule else None)
    return doc
