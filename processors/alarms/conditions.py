"""Rule conditions compiled into small evaluators over one machine's latest signals.

Evaluation is three-valued (Kleene): a leaf is ``None`` when it cannot be judged (no telemetry yet,
a dropped sample, no state report yet). A rule raises only on ``True`` and clears only on ``True`` of
its clear condition, so a sensor that drops out neither raises nor clears an alarm.

Leaves remember since when they have been true (``for_s``) and register the next event time at which
their value changes without any new input (a ``for_s`` elapsing, an anomaly's hold expiring), so the
engine can fire duration rules at exact event times however often it is ticked.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from processors.alarms.rules import (
    AllCondition,
    AnomalyCondition,
    AnyCondition,
    Condition,
    NotCondition,
    RulCondition,
    Rule,
    StateCondition,
    TelemetryCondition,
)

Cause = tuple[str, str]
"""(event_id, correlation_id) of the event that made a leaf true."""


class Signals:
    """What the engine knows of one machine now: latest channel values, state, recent anomalies."""

    __slots__ = (
        "cause",
        "causes",
        "deadline",
        "hits",
        "line_id",
        "machine_id",
        "machine_type",
        "reason",
        "rul",
        "since",
        "state",
        "state_since",
        "telemetry_seen",
        "units",
        "values",
    )

    def __init__(self, machine_id: str) -> None:
        self.machine_id = machine_id
        self.line_id: str | None = None
        self.machine_type: str | None = None
        self.values: dict[str, float | None] = {}
        self.units: dict[str, str] = {}
        self.telemetry_seen = False
        self.state: str | None = None
        self.state_since = 0
        self.reason = ""
        self.hits: dict[str, tuple[int, float, str]] = {}
        """Per anomaly leaf: (time, score, detector) of the last matching anomaly."""
        self.rul: dict[str, tuple[int, float, float, float]] = {}
        """Per component: (time, low, estimate, high) seconds of the latest RUL estimate."""
        self.since: dict[str, int] = {}
        self.causes: dict[str, Cause] = {}
        self.cause: Cause = ("", "")
        self.deadline: int | None = None

    def note_deadline(self, at_ms: int) -> None:
        """Something changes at ``at_ms`` with no new input: the engine must evaluate again then."""
        if self.deadline is None or at_ms < self.deadline:
            self.deadline = at_ms

    def to_json(self) -> dict[str, Any]:
        return {
            "line_id": self.line_id,
            "machine_type": self.machine_type,
            "values": self.values,
            "units": self.units,
            "telemetry_seen": self.telemetry_seen,
            "state": self.state,
            "state_since": self.state_since,
            "reason": self.reason,
            "hits": {k: list(v) for k, v in self.hits.items()},
            "rul": {k: list(v) for k, v in self.rul.items()},
            "since": self.since,
            "causes": {k: list(v) for k, v in self.causes.items()},
            "cause": list(self.cause),
            "deadline": self.deadline,
        }

    @classmethod
    def from_json(cls, machine_id: str, data: dict[str, Any]) -> Signals:
        s = cls(machine_id)
        s.line_id = data["line_id"]
        s.machine_type = data["machine_type"]
        s.values = dict(data["values"])
        s.units = dict(data["units"])
        s.telemetry_seen = bool(data["telemetry_seen"])
        s.state = data["state"]
        s.state_since = int(data["state_since"])
        s.reason = data["reason"]
        s.hits = {k: (int(v[0]), float(v[1]), str(v[2])) for k, v in data["hits"].items()}
        # Absent in snapshots from before RUL estimates existed: none known yet.
        s.rul = {
            k: (int(v[0]), float(v[1]), float(v[2]), float(v[3])) for k, v in data.get("rul", {}).items()
        }
        s.since = {k: int(v) for k, v in data["since"].items()}
        s.causes = {k: (str(v[0]), str(v[1])) for k, v in data["causes"].items()}
        s.cause = (str(data["cause"][0]), str(data["cause"][1]))
        s.deadline = data["deadline"]
        return s


class Node:
    """A compiled condition."""

    def eval(self, s: Signals, t: int) -> bool | None:
        raise NotImplementedError

    def leaves(self) -> list[Leaf]:
        raise NotImplementedError


class Leaf(Node):
    """A condition on one signal, with ``for_s``: true only once it has held that long."""

    def __init__(self, key: str, for_s: float) -> None:
        self.key = key
        self.for_ms = round(for_s * 1000)

    def raw(self, s: Signals, t: int) -> bool | None:
        raise NotImplementedError

    def started(self, s: Signals, t: int) -> int:
        """When the raw condition began, first seen true at ``t``."""
        return t

    def value(self, s: Signals, t: int) -> float | None:
        """The signal's value for an alarm record, in its unit."""
        return None

    def unit(self, s: Signals) -> str:
        return ""

    def worse(self, old: float, new: float) -> bool:
        """Whether ``new`` is further past the limit than ``old`` (an alarm's peak): by default, higher
        is worse (an anomaly score, seconds in a state)."""
        return new > old

    def details(self) -> dict[str, str]:
        return {}

    def leaves(self) -> list[Leaf]:
        return [self]

    def eval(self, s: Signals, t: int) -> bool | None:
        r = self.raw(s, t)
        if r is True:
            since = s.since.get(self.key)
            if since is None:
                since = s.since[self.key] = self.started(s, t)
                s.causes[self.key] = s.cause
            if self.for_ms:
                due = since + self.for_ms
                if t < due:
                    s.note_deadline(due)
                    return False
            return True
        if r is False and self.key in s.since:
            del s.since[self.key]
            s.causes.pop(self.key, None)
        # Unknown keeps ``since``: one dropped sample does not restart a "for 10 minutes" count.
        return r


_ABSENT: Any = object()

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class TelemetryLeaf(Leaf):
    def __init__(self, key: str, spec: TelemetryCondition) -> None:
        super().__init__(key, spec.for_s)
        self.channel = spec.channel
        self.op = spec.op
        # The validator guarantees the operands each op needs; the others are never read.
        self.threshold = spec.value if spec.value is not None else math.nan
        self.low = spec.low if spec.low is not None else -math.inf
        self.high = spec.high if spec.high is not None else math.inf
        self._compare = _COMPARE.get(spec.op)

    def raw(self, s: Signals, t: int) -> bool | None:
        if not s.telemetry_seen:
            return None
        v = s.values.get(self.channel, _ABSENT)
        if v is _ABSENT:
            # The machine does not report this channel: the condition cannot hold here. (Unknown
            # would keep an ``any`` over channels from ever clearing on machines lacking one.)
            return False
        if self.op == "missing":
            return v is None
        if v is None:
            return None
        if self._compare is not None:
            return self._compare(v, self.threshold)
        inside: bool = self.low <= v <= self.high
        return inside if self.op == "between" else not inside

    def value(self, s: Signals, t: int) -> float | None:
        return s.values.get(self.channel)

    def unit(self, s: Signals) -> str:
        return s.units.get(self.channel, "")

    def worse(self, old: float, new: float) -> bool:
        return self._excess(new) > self._excess(old)

    def _excess(self, v: float) -> float:
        """How far ``v`` lies past the limit in the direction the condition raises on."""
        op = self.op
        if op in (">", ">="):
            return v - self.threshold
        if op in ("<", "<="):
            return self.threshold - v
        if op == "!=":
            return abs(v - self.threshold)
        if op == "outside":
            return max(self.low - v, v - self.high)
        if op == "between":
            return min(v - self.low, self.high - v)  # deepest inside the band
        return 0.0  # "==" has no direction: the raising value stays the peak

    def details(self) -> dict[str, str]:
        if self.op in ("between", "outside"):
            condition = f"{self.op} {self.low:g}..{self.high:g}"
        elif self.op == "missing":
            condition = "missing"
        else:
            condition = f"{self.op} {self.threshold:g}"
        return {"channel": self.channel, "condition": condition}


class AnomalyLeaf(Leaf):
    def __init__(self, key: str, spec: AnomalyCondition) -> None:
        super().__init__(key, spec.for_s)
        m = spec.anomaly
        self.detector = m.detector
        self.signal = m.signal
        self.score_ratio = m.score_ratio
        self.min_score = m.min_score
        self.hold_ms = round(m.hold_s * 1000)

    def matches(self, anomaly: dict[str, Any]) -> bool:
        if self.detector is not None and anomaly["detector"] != self.detector:
            return False
        score = float(anomaly["score"])
        if score < self.score_ratio * float(anomaly["threshold"]):
            return False
        if self.min_score is not None and score < self.min_score:
            return False
        return self.signal is None or any(c["name"] == self.signal for c in anomaly.get("contributing") or ())

    def raw(self, s: Signals, t: int) -> bool | None:
        hit = s.hits.get(self.key)
        if hit is None:
            return False
        end = hit[0] + self.hold_ms
        if t < end:
            s.note_deadline(end)
            return True
        return False

    def value(self, s: Signals, t: int) -> float | None:
        hit = s.hits.get(self.key)
        return None if hit is None else hit[1]

    def details(self) -> dict[str, str]:
        d = {"condition": f"anomaly score >= {self.score_ratio:g} x threshold"}
        if self.detector:
            d["detector"] = self.detector
        if self.signal:
            d["signal"] = self.signal
        return d


class RulLeaf(Leaf):
    """The latest RUL estimate (one bound of its band) below or above a horizon; unknown until an
    estimate arrived. Its value is that bound in seconds, and shorter is worse."""

    _BOUND: ClassVar[dict[str, int]] = {"low": 1, "estimate": 2, "high": 3}

    def __init__(self, key: str, spec: RulCondition) -> None:
        super().__init__(key, spec.for_s)
        m = spec.rul
        self.component = m.component
        self.index = self._BOUND[m.bound]
        self.bound = m.bound
        self.below = m.below_s
        self.above = m.above_s

    def _life(self, s: Signals) -> float | None:
        if self.component is not None:
            est = s.rul.get(self.component)
            return None if est is None else est[self.index]
        lives = [est[self.index] for est in s.rul.values()]
        return min(lives) if lives else None

    def raw(self, s: Signals, t: int) -> bool | None:
        life = self._life(s)
        if life is None:
            return None
        return life < self.below if self.below is not None else life > (self.above or 0.0)

    def value(self, s: Signals, t: int) -> float | None:
        return self._life(s)

    def unit(self, s: Signals) -> str:
        return "s"

    def worse(self, old: float, new: float) -> bool:
        return new < old

    def details(self) -> dict[str, str]:
        limit = f"< {self.below:g} s" if self.below is not None else f"> {self.above:g} s"
        d = {"condition": f"remaining useful life ({self.bound}) {limit}"}
        if self.component:
            d["component"] = self.component
        return d


class StateLeaf(Leaf):
    def __init__(self, key: str, spec: StateCondition) -> None:
        super().__init__(key, spec.for_s)
        self.states = frozenset(spec.state)
        self.reasons = None if spec.reason is None else frozenset(spec.reason)

    def raw(self, s: Signals, t: int) -> bool | None:
        if s.state is None:
            return None
        return s.state in self.states and (self.reasons is None or s.reason in self.reasons)

    def started(self, s: Signals, t: int) -> int:
        # The state began at its report, even if the rule first looked later (type learnt late).
        return min(s.state_since, t)

    def value(self, s: Signals, t: int) -> float | None:
        """Seconds in the state: what 'DOWN for 2 minutes' is about. None once the state is left, so
        a cleared alarm keeps how long the state lasted."""
        return (t - s.state_since) / 1000 if self.raw(s, t) is True else None

    def unit(self, s: Signals) -> str:
        return "s"

    def details(self) -> dict[str, str]:
        d = {"state": "|".join(sorted(self.states))}
        if self.reasons is not None:
            d["reason"] = "|".join(sorted(self.reasons))
        return d


class AllNode(Node):
    def __init__(self, children: list[Node]) -> None:
        self.children = children

    def eval(self, s: Signals, t: int) -> bool | None:
        # Every child is evaluated (no short-circuit): each leaf keeps its own ``since`` up to date.
        results = [c.eval(s, t) for c in self.children]
        if False in results:
            return False
        return None if None in results else True

    def leaves(self) -> list[Leaf]:
        return [leaf for c in self.children for leaf in c.leaves()]


class AnyNode(AllNode):
    def eval(self, s: Signals, t: int) -> bool | None:
        results = [c.eval(s, t) for c in self.children]
        if True in results:
            return True
        return None if None in results else False


class NotNode(Node):
    def __init__(self, child: Node) -> None:
        self.child = child

    def eval(self, s: Signals, t: int) -> bool | None:
        r = self.child.eval(s, t)
        return None if r is None else not r

    def leaves(self) -> list[Leaf]:
        return self.child.leaves()


def compile_condition(spec: Condition, key: str) -> Node:  # noqa: PLR0911 - one return per kind
    """An evaluator for ``spec``; ``key`` names its leaves uniquely (rule id and path)."""
    if isinstance(spec, AllCondition):
        return AllNode([compile_condition(c, f"{key}.{i}") for i, c in enumerate(spec.all_)])
    if isinstance(spec, AnyCondition):
        return AnyNode([compile_condition(c, f"{key}.{i}") for i, c in enumerate(spec.any_)])
    if isinstance(spec, NotCondition):
        return NotNode(compile_condition(spec.not_, f"{key}.not"))
    if isinstance(spec, AnomalyCondition):
        return AnomalyLeaf(key, spec)
    if isinstance(spec, StateCondition):
        return StateLeaf(key, spec)
    if isinstance(spec, RulCondition):
        return RulLeaf(key, spec)
    return TelemetryLeaf(key, spec)


@dataclass(frozen=True, slots=True)
class Step:
    """A compiled escalation step."""

    severity: str
    after_ms: int | None
    when: Node | None


@dataclass(slots=True)
class CompiledRule:
    """A rule ready to evaluate."""

    spec: Rule
    raise_: Node
    clear: Node | None
    clear_after_ms: int
    steps: tuple[Step, ...]
    raise_leaves: list[Leaf] = field(default_factory=list)
    anomaly_leaves: list[AnomalyLeaf] = field(default_factory=list)
    leaf_keys: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()  # every channel its conditions name

    @property
    def primary(self) -> Leaf | None:
        """The leaf whose value an alarm carries: the first one of the raise condition."""
        return self.raise_leaves[0] if self.raise_leaves else None

    @classmethod
    def build(cls, rule: Rule) -> CompiledRule:
        raise_ = compile_condition(rule.raise_, f"{rule.id}/raise")
        clear = None if rule.clear is None else compile_condition(rule.clear, f"{rule.id}/clear")
        steps = tuple(
            Step(
                e.severity,
                None if e.after_s is None else round(e.after_s * 1000),
                None if e.when is None else compile_condition(e.when, f"{rule.id}/escalate.{i}"),
            )
            for i, e in enumerate(rule.escalate)
        )
        every = raise_.leaves() + (clear.leaves() if clear else [])
        every += [leaf for st in steps if st.when is not None for leaf in st.when.leaves()]
        return cls(
            spec=rule,
            raise_=raise_,
            clear=clear,
            clear_after_ms=round(rule.clear_after_s * 1000),
            steps=steps,
            raise_leaves=raise_.leaves(),
            anomaly_leaves=[leaf for leaf in every if isinstance(leaf, AnomalyLeaf)],
            leaf_keys=frozenset(leaf.key for leaf in every),
            channels=frozenset(leaf.channel for leaf in every if isinstance(leaf, TelemetryLeaf)),
        )
