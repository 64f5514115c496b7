"""Per-key processors for several keys at once, routed by a record field: what the stages do by
Kafka key, for tests that feed a whole line's events to one kind of processor."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Generic, TypeVar

from processors.base import Emit, Processor, Record

P = TypeVar("P", bound=Processor)


class Fleet(Generic[P]):
    """``make(key)`` on first use of a key; ``process_one`` routes by ``record[field]``."""

    def __init__(self, make: Callable[[str], P], field: str = "machine_id") -> None:
        self.make = make
        self.field = field
        self.members: dict[str, P] = {}

    def __getitem__(self, key: str) -> P:
        member = self.members.get(key)
        if member is None:
            member = self.members[key] = self.make(key)
        return member

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        return self[str(record[self.field])].process_one(topic, record)

    def advance(self, event_time_ms: int) -> list[Emit]:
        return [e for member in self.members.values() for e in member.advance(event_time_ms)]

    def keys(self) -> list[str]:
        return sorted(self.members)

    @property
    def stats(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for member in self.members.values():
            total.update(getattr(member, "stats", Counter()))
        return total

    def snapshots(self) -> dict[str, bytes]:
        return {key: member.snapshot() for key, member in self.members.items()}

    def restore(self, snapshots: dict[str, bytes]) -> None:
        for key, data in snapshots.items():
            self[key].restore(data)
