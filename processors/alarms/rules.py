"""Alarm rules: the YAML file format, validated with pydantic, and its loader.

A rule names an alarm type, which machines it watches (``select``), when to raise (``raise``), when
to clear (``clear``, default: the raise condition is definitely false), a base ``severity`` and
optional ``escalate`` steps. Conditions are small trees:

- ``{channel: vibration_rms, op: ">", value: 4.5}`` — a telemetry channel against a threshold
  (``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=``; ``between``/``outside`` take ``low`` and ``high``;
  ``missing`` is true while the channel delivers no value)
- ``{anomaly: {detector: hst-multivariate, score_ratio: 2.0, hold_s: 120}}`` — an anomaly from
  ``twin.anomalies`` with score >= score_ratio x threshold, true for ``hold_s`` after each one
- ``{state: DOWN, reason: [jam]}`` — the machine's current state (and reason)
- ``{all: [...]}``, ``{any: [...]}``, ``{not: ...}`` — combinations across signals

Every leaf takes ``for_s``: it only counts once it has held for that long ("DOWN for 2 minutes").
See docs/alarms.md for the full reference.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from twin.errors import ConfigError


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


# Case-insensitive in the file (``severity: major``), upper case everywhere after.
Severity = Annotated[
    Literal["CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE"], BeforeValidator(_upper)
]
SEVERITY_RANK: dict[str, int] = {"CRITICAL": 0, "MAJOR": 1, "MINOR": 2, "WARNING": 3, "INDETERMINATE": 4}
"""Lower is more severe (the Avro enum's order)."""

MachineStateName = Literal["RUNNING", "IDLE", "STARVED", "BLOCKED", "DOWN", "SETUP"]
Op = Literal[">", ">=", "<", "<=", "==", "!=", "between", "outside", "missing"]

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Leaf(_Model):
    for_s: float = Field(default=0.0, ge=0, description="Counts only after holding this long, seconds.")


class TelemetryCondition(_Leaf):
    """A channel of the machine's latest telemetry compared with a threshold."""

    channel: str = Field(min_length=1)
    op: Op
    value: float | None = None
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _operands(self) -> TelemetryCondition:
        if self.op in ("between", "outside"):
            if self.low is None or self.high is None:
                msg = f"op '{self.op}' needs 'low' and 'high'"
                raise ValueError(msg)
            if self.low > self.high:
                msg = f"'low' ({self.low}) is above 'high' ({self.high})"
                raise ValueError(msg)
        elif self.op == "missing":
            if self.value is not None:
                msg = "op 'missing' takes no 'value'"
                raise ValueError(msg)
        elif self.value is None:
            msg = f"op '{self.op}' needs 'value'"
            raise ValueError(msg)
        return self


class AnomalyMatch(_Model):
    """Which anomalies count: detector, contributing signal, score relative to the threshold."""

    detector: str | None = None
    signal: str | None = Field(default=None, description="Only anomalies this signal contributed to.")
    score_ratio: float = Field(default=1.0, ge=0, description="score >= score_ratio x threshold.")
    min_score: float | None = None
    hold_s: float = Field(default=60.0, gt=0, description="True for this long after a matching anomaly.")


class AnomalyCondition(_Leaf):
    anomaly: AnomalyMatch


class RulMatch(_Model):
    """The machine's latest remaining-useful-life estimate (``twin.maintenance``) against a horizon:
    ``below_s`` raises when the life left is shorter, ``above_s`` (a clear) when it is longer again.
    ``bound`` picks the band's ``low`` end (default: plan by the pessimistic end), the ``estimate``
    or the ``high`` end; ``component`` only that component's estimates (default: any, the
    shortest life left)."""

    below_s: float | None = Field(default=None, gt=0)
    above_s: float | None = Field(default=None, gt=0)
    bound: Literal["low", "estimate", "high"] = "low"
    component: str | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> RulMatch:
        if (self.below_s is None) == (self.above_s is None):
            msg = "a rul condition needs exactly one of 'below_s' and 'above_s'"
            raise ValueError(msg)
        return self


class RulCondition(_Leaf):
    rul: RulMatch


class StateCondition(_Leaf):
    """The machine's current state is one of ``state`` (and its reason one of ``reason``)."""

    state: tuple[MachineStateName, ...]
    reason: tuple[str, ...] | None = None

    @field_validator("state", "reason", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("state")
    @classmethod
    def _not_empty(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            msg = "name at least one state"
            raise ValueError(msg)
        return v


class AllCondition(_Model):
    all_: list[Condition] = Field(alias="all", min_length=1)


class AnyCondition(_Model):
    any_: list[Condition] = Field(alias="any", min_length=1)


class NotCondition(_Model):
    not_: Condition = Field(alias="not")


# The tags appear in validation error paths; the angle brackets let the error formatter drop them.
_KINDS = (
    ("all", "<all>"),
    ("any", "<any>"),
    ("not", "<not>"),
    ("anomaly", "<anomaly>"),
    ("rul", "<rul>"),
    ("state", "<state>"),
    ("channel", "<channel>"),
)
_MODEL_TAGS: dict[type[BaseModel], str] = {}


def _condition_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        return next((tag for key, tag in _KINDS if key in v), None)
    return _MODEL_TAGS.get(type(v))


Condition = Annotated[
    Annotated[AllCondition, Tag("<all>")]
    | Annotated[AnyCondition, Tag("<any>")]
    | Annotated[NotCondition, Tag("<not>")]
    | Annotated[AnomalyCondition, Tag("<anomaly>")]
    | Annotated[RulCondition, Tag("<rul>")]
    | Annotated[StateCondition, Tag("<state>")]
    | Annotated[TelemetryCondition, Tag("<channel>")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition_kind",
        custom_error_message="a condition needs one of the keys channel, anomaly, rul, state, all, any, not",
    ),
]
_MODEL_TAGS.update(
    {
        AllCondition: "<all>",
        AnyCondition: "<any>",
        NotCondition: "<not>",
        AnomalyCondition: "<anomaly>",
        RulCondition: "<rul>",
        StateCondition: "<state>",
        TelemetryCondition: "<channel>",
    }
)
for _m in (AllCondition, AnyCondition, NotCondition):
    _m.model_rebuild()


class Selector(_Model):
    """Which machines a rule watches; every list given must match, an empty selector matches all."""

    machines: tuple[str, ...] = ()
    machine_types: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()

    def matches(self, machine_id: str, machine_type: str | None, line_id: str | None) -> bool:
        """Whether the machine is selected; a type or line not known yet does not match a list of them."""
        return (
            (not self.machines or machine_id in self.machines)
            and (not self.machine_types or machine_type in self.machine_types)
            and (not self.lines or line_id in self.lines)
        )


class Escalation(_Model):
    """Raise the severity to ``severity`` once active for ``after_s`` and/or while ``when`` holds."""

    severity: Severity
    after_s: float | None = Field(default=None, ge=0)
    when: Condition | None = None

    @model_validator(mode="after")
    def _has_trigger(self) -> Escalation:
        if self.after_s is None and self.when is None:
            msg = "an escalation step needs 'after_s' or 'when'"
            raise ValueError(msg)
        return self


MESSAGE_FIELDS = (
    "machine_id",
    "machine_type",
    "line_id",
    "alarm_type",
    "rule_id",
    "severity",
    "value",  # the value that raised it
    "unit",
    "channel",  # the signal of the rule's first condition ('' for a state or anomaly rule)
    "peak",  # the worst value so far
    "value_duration",  # the value, in seconds (a state's duration), in human units: '5 h 6 min'
    "peak_duration",  # the peak likewise: how long a state lasted at most
    "duration",  # how long the alarm has been active, in human units
)


class MessageFormatter(string.Formatter):
    """``str.format`` that prints a missing value as 'n/a' instead of failing on ``{value:.1f}``."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return "n/a"
        return str(super().format_field(value, format_spec))


FORMATTER = MessageFormatter()


class Rule(_Model):
    """One alarm rule; see the module docstring and docs/alarms.md."""

    id: str = Field(min_length=1)
    alarm_type: str = Field(min_length=1)
    select: Selector = Selector()
    severity: Severity = "MAJOR"
    raise_: Condition = Field(alias="raise")
    clear: Condition | None = None
    clear_after_s: float = Field(default=0.0, ge=0, description="The clear condition must hold this long.")
    escalate: tuple[Escalation, ...] = ()
    message: str = ""
    details: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True

    @field_validator("select", mode="before")
    @classmethod
    def _all(cls, v: Any) -> Any:
        if v == "all" or v is None:
            return {}
        return v

    @field_validator("message")
    @classmethod
    def _template(cls, v: str) -> str:
        # A typo in a placeholder would otherwise surface only when the alarm fires, at 3 a.m.
        sample = {name: "x" for name in MESSAGE_FIELDS} | {"value": 1.0, "peak": 1.0}
        try:
            FORMATTER.vformat(v, (), sample)
            FORMATTER.vformat(v, (), sample | {"value": None, "peak": None})
        except (KeyError, IndexError, ValueError) as exc:
            msg = f"bad placeholder {exc} (known: {', '.join(MESSAGE_FIELDS)})"
            raise ValueError(msg) from None
        return v


class RulesFile(_Model):
    """The rules file: a format version and the rules, in priority order."""

    version: Literal[1] = 1
    rules: tuple[Rule, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> RulesFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                msg = f"duplicate rule id '{rule.id}'"
                raise ValueError(msg)
            seen.add(rule.id)
        return self


def _describe(error: ValidationError, data: Any, source: str) -> str:
    """One line naming the rule and field of the first error (and how many more there are)."""
    first = error.errors()[0]
    loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith("<"))]
    where = ""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        index = loc[1]
        rules = data.get("rules") if isinstance(data, dict) else None
        raw = rules[index] if isinstance(rules, list) and index < len(rules) else None
        name = raw.get("id") if isinstance(raw, dict) else None
        where = f"rule '{name}'" if name else f"rule #{index + 1}"
        loc = loc[2:]
    field = ".".join(str(p) for p in loc)
    parts = [p for p in (where, f"field '{field}'" if field else "") if p]
    more = len(error.errors()) - 1
    tail = f" (+{more} more)" if more else ""
    prefix = ", ".join(parts)
    hint = ""
    if isinstance(first.get("input"), bool) and "string" in first["msg"]:
        hint = " (YAML reads unquoted yes/no/on/off/true/false as a boolean: quote it, e.g. 'on')"
    return f"alarm rules {source}: {prefix + ': ' if prefix else ''}{first['msg']}{hint}{tail}"


def parse_rules(data: Any, source: str = "<data>") -> RulesFile:
    """Validate already-loaded YAML/JSON data; a problem is a one-line ``ConfigError``."""
    try:
        return RulesFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data, source)) from None


def read_rules(path: Path) -> RulesFile:
    """Read and validate a rules file: the only I/O of the alarms package (config loading)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"alarm rules {path}: cannot read ({exc.strerror or exc})"
        raise ConfigError(msg) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        msg = f"alarm rules {path}: {problem}{at}"
        raise ConfigError(msg) from None
    return parse_rules(data, str(path))
