"""What a client asked to see: lines, machines and streams.

Empty sets mean "all". Line-level frames (a line KPI, a plan) carry no machine, so a machine filter
lets them through; a line filter still applies to them.

>>> f = Subscription.parse({"machines": ["cnc-1"], "streams": ["state"]})
>>> f.matches("state", "line-1", "cnc-1"), f.matches("state", "line-1", "press-1")
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from twin.errors import FilterError

STREAMS = ("state", "alarms", "kpis", "anomalies", "plans")
_MAX_IDS = 1000  # a filter longer than this is a mistake or an attack, not a view


@dataclass(frozen=True)
class Subscription:
    lines: frozenset[str] = frozenset()
    machines: frozenset[str] = frozenset()
    streams: frozenset[str] = frozenset(STREAMS)

    @classmethod
    def parse(cls, message: Mapping[str, Any]) -> Subscription:
        streams = _ids(message.get("streams"), "streams") or frozenset(STREAMS)
        unknown = sorted(streams - set(STREAMS))
        if unknown:
            msg = f"unknown streams {unknown}; known: {list(STREAMS)}"
            raise FilterError(msg)
        return cls(_ids(message.get("lines"), "lines"), _ids(message.get("machines"), "machines"), streams)

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> Subscription | None:
        """From ``?lines=a,b&machines=..&streams=..``; None when the query names none of them."""
        if not any(k in params for k in ("lines", "machines", "streams")):
            return None
        return cls.parse({k: _split(params[k]) for k in ("lines", "machines", "streams") if k in params})

    def matches(self, stream: str, line_id: str | None, machine_id: str | None) -> bool:
        if stream not in self.streams:
            return False
        if self.lines and line_id not in self.lines:
            return False
        return not (self.machines and machine_id is not None and machine_id not in self.machines)

    def describe(self) -> dict[str, list[str]]:
        return {
            "lines": sorted(self.lines),
            "machines": sorted(self.machines),
            "streams": [s for s in STREAMS if s in self.streams],
        }


def _split(value: str) -> list[str]:
    return [v for v in (p.strip() for p in value.split(",")) if v]


def _ids(value: Any, name: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, Iterable):
        msg = f"'{name}' must be a list of strings"
        raise FilterError(msg)
    items = list(value)
    if len(items) > _MAX_IDS or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in items):
        msg = f"'{name}' must be a list of at most {_MAX_IDS} non-empty strings"
        raise FilterError(msg)
    return frozenset(items)
