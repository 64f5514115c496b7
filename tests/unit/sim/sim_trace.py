"""Shared helpers for the simulator tests: small layouts, and ways to slice an event stream."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sim import (
    FactorySpec,
    PartProducedEvent,
    SimEvent,
    Simulator,
    StateChangeEvent,
    TelemetryEvent,
    parse_factory,
)

T0 = 1_700_000_000_000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000


def layout(*stations: dict[str, Any], **extra: Any) -> FactorySpec:
    """One line ``L`` of ``stations`` (dicts overriding cheap defaults: cnc, 10 s cycle, 30 s telemetry)."""
    specs = []
    for i, s in enumerate(stations):
        spec: dict[str, Any] = {
            "id": f"m{i + 1}",
            "machine_type": "cnc",
            "ideal_cycle_time_s": 10,
            "telemetry_interval_s": 30,
        }
        if i > 0:
            spec["input_buffer"] = 3
        spec.update(s)
        specs.append(spec)
    line = {"id": "L", "stations": specs, **extra.pop("line", {})}
    return parse_factory({"lines": [line], **extra}, source="test")


def run(factory: FactorySpec, seed: int, duration_ms: int) -> tuple[Simulator, list[SimEvent]]:
    sim = Simulator(factory, seed=seed, start_time_ms=T0)
    return sim, list(sim.run(T0 + duration_ms))


def states(events: Iterable[SimEvent], machine_id: str) -> list[StateChangeEvent]:
    return [e for e in events if isinstance(e, StateChangeEvent) and e.machine_id == machine_id]


def parts(events: Iterable[SimEvent], machine_id: str) -> list[PartProducedEvent]:
    return [e for e in events if isinstance(e, PartProducedEvent) and e.machine_id == machine_id]


def telemetry(events: Iterable[SimEvent], machine_id: str) -> list[TelemetryEvent]:
    return [e for e in events if isinstance(e, TelemetryEvent) and e.machine_id == machine_id]


def channel(events: Iterable[SimEvent], machine_id: str, name: str) -> list[tuple[int, float | None]]:
    out = []
    for e in telemetry(events, machine_id):
        for r in e.channels:
            if r.name == name:
                out.append((e.time_ms, r.value))
    return out


def values(series: Sequence[tuple[int, float | None]], start_ms: int, end_ms: int) -> list[float]:
    """The non-missing values with ``start_ms <= t < end_ms``."""
    return [v for t, v in series if start_ms <= t < end_ms and v is not None]


def mean(xs: Sequence[float]) -> float:
    assert xs, "no values to average"
    return sum(xs) / len(xs)


def time_in_state(events: Sequence[SimEvent], machine_id: str, end_ms: int) -> dict[str, int]:
    """Milliseconds ``machine_id`` spent in each state up to ``end_ms``."""
    spent: dict[str, int] = {}
    changes = states(events, machine_id)
    for this, nxt in zip(changes, [*changes[1:], None], strict=True):
        until = end_ms if nxt is None else nxt.time_ms
        spent[this.state] = spent.get(this.state, 0) + until - this.time_ms
    return spent


def state_at(events: Sequence[SimEvent], machine_id: str, time_ms: int) -> str:
    current = ""
    for e in states(events, machine_id):
        if e.time_ms > time_ms:
            break
        current = e.state
    return current
