"""Map simulator events to Avro records of the event contracts (schemas/avro)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never

from sim.events import PartProducedEvent, SimEvent, StateChangeEvent, TelemetryEvent
from twin.topics import PRODUCTION, STATE, TELEMETRY


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record ready to publish."""

    topic: str
    key: str
    record: dict[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.record["event_id"])


class EventMapper:
    """Turns ``SimEvent``s into records. Event ids come from a generator seeded with the seed and
    the run id: a retry of the same run replays the same ids (a consumer drops the duplicates),
    another run never meets them. ``source`` is ``sim:<run id>:<line>`` (``sim:<line>`` without a
    run id: tests and benchmarks in their own namespaces).

    ``correlation`` (line_id -> id, kept up to date by the caller) is the cause a line's state and
    production events follow: the correlation id of the plan the line dispatches by. Without one, an
    event is its own root (its correlation id is its event id)."""

    def __init__(
        self,
        seed: int,
        run_id: str = "",
        source_prefix: str = "sim",
        correlation: Mapping[str, str] | None = None,
    ) -> None:
        self._correlation = correlation if correlation is not None else {}
        salt = f"event-ids:{seed}:{run_id}" if run_id else f"event-ids:{seed}"
        self._rng = random.Random(salt)  # noqa: S311 - reproducible ids, not secrets
        self._source_prefix = f"{source_prefix}:{run_id}" if run_id else source_prefix

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def map(self, event: SimEvent) -> Outgoing:
        event_id = self._new_id()
        header = {
            "event_id": event_id,
            "event_time": event.time_ms,
            "source": f"{self._source_prefix}:{event.line_id}",
            "correlation_id": event_id,
            "line_id": event.line_id,
            "machine_id": event.machine_id,
        }
        if isinstance(event, TelemetryEvent):
            header["machine_type"] = event.machine_type
            header["channels"] = [{"name": c.name, "value": c.value, "unit": c.unit} for c in event.channels]
            return Outgoing(TELEMETRY, event.machine_id, header)
        if self._correlation and event.line_id in self._correlation:
            header["correlation_id"] = self._correlation[event.line_id]
        if isinstance(event, PartProducedEvent):
            header.update(
                part_id=event.part_id,
                cycle_time_s=event.cycle_time_s,
                ideal_cycle_time_s=event.ideal_cycle_time_s,
                good=event.good,
                scrap_reason=event.scrap_reason,
                product_family=event.family,
                due_time=event.due_ms,
            )
            return Outgoing(PRODUCTION, event.machine_id, header)
        if isinstance(event, StateChangeEvent):
            header.update(previous=event.previous, state=event.state, reason=event.reason)
            return Outgoing(STATE, event.machine_id, header)
        assert_never(event)
