"""Publish events: simulator publisher, file/JSONL/CSV publisher (later the Unity bridge)."""

from __future__ import annotations

from producers.pacing import Pacer
from producers.publisher import Publisher, PublishStats
from producers.records import EventMapper, Outgoing

__all__ = ["EventMapper", "Outgoing", "Pacer", "PublishStats", "Publisher"]
