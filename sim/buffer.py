"""A finite buffer between two stations, and the parts that sit in it."""

from __future__ import annotations

from collections import deque


class Part:
    """A workpiece; ``defect`` is a latent defect that only an inspection station can find."""

    __slots__ = ("defect", "part_id")

    def __init__(self, part_id: str) -> None:
        self.part_id = part_id
        self.defect: str | None = None


class Buffer:
    __slots__ = ("buffer_id", "capacity", "downstream_id", "parts", "upstream_id")

    def __init__(self, upstream_id: str, downstream_id: str, capacity: int) -> None:
        self.buffer_id = f"{upstream_id}->{downstream_id}"
        self.upstream_id = upstream_id
        self.downstream_id = downstream_id
        self.capacity = capacity
        self.parts: deque[Part] = deque()

    @property
    def full(self) -> bool:
        return len(self.parts) >= self.capacity
