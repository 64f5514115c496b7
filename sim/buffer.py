"""A finite buffer (queue) in front of a stage, and the parts that sit in it."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.dispatch import QueueItem
    from sim.machine import Machine


class Part:
    """A workpiece (an order of one part on lines with a release process).

    ``defect`` is a latent defect that only an inspection station can find. ``family`` and
    ``due_ms`` are ``None`` on lines without families or due dates; ``arrived_ms`` is when it
    entered the queue it waits in. ``item`` caches how it looks to the machine ``item_for`` set up
    for ``item_family`` (``sim.dispatch.QueueItem``): a part waits through several decisions.
    """

    __slots__ = (
        "arrived_ms",
        "correlation_id",
        "defect",
        "due_ms",
        "family",
        "item",
        "item_family",
        "item_for",
        "part_id",
        "released_ms",
    )

    def __init__(
        self, part_id: str, released_ms: int, family: str | None = None, due_ms: int | None = None
    ) -> None:
        self.part_id = part_id
        self.defect: str | None = None
        self.family = family
        self.due_ms = due_ms
        self.released_ms = released_ms
        self.arrived_ms = released_ms
        self.correlation_id: str | None = None
        self.item: QueueItem | None = None
        self.item_for: Machine | None = None
        self.item_family: str | None = None


class Buffer:
    """Parts in arrival order. ``producers`` put parts in (the machines of the stage before; none
    for a release backlog), ``consumers`` take them out (the machines of the stage it feeds)."""

    __slots__ = ("buffer_id", "capacity", "consumers", "downstream_id", "parts", "producers", "upstream_id")

    def __init__(self, upstream_id: str, downstream_id: str, capacity: int) -> None:
        self.buffer_id = f"{upstream_id}->{downstream_id}"
        self.upstream_id = upstream_id
        self.downstream_id = downstream_id
        self.capacity = capacity
        self.parts: deque[Part] = deque()
        self.producers: list[Machine] = []
        self.consumers: list[Machine] = []

    @property
    def full(self) -> bool:
        return len(self.parts) >= self.capacity
