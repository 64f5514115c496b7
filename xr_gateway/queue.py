"""A client's bounded outbound queue with conflation.

Frames leave in sequence order. A frame with a conflation key replaces the one with the same key
still waiting (and moves to the back, so order holds); other frames take a slot each. When the
slots are all taken the client is too slow: ``put`` returns False and the hub disconnects it,
instead of growing memory or slowing everyone else down.

>>> q = ClientQueue(max_frames=2)
>>> from xr_gateway.frames import Frame
>>> a1, a2 = (Frame(i, "state", "l", "a", ("state", "a"), f"a{i}") for i in (1, 2))
>>> q.put(a1, 0.0), q.put(a2, 0.0), [f.text for f in q.drain()]
(True, True, ['a2'])
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from xr_gateway.frames import Frame


class ClientQueue:
    def __init__(self, max_frames: int) -> None:
        self.max_frames = max_frames
        self._items: OrderedDict[Any, Frame] = OrderedDict()
        self._ready = asyncio.Event()
        self.pending_since: float | None = None  # when the oldest undrained frame arrived
        self.conflated = 0  # frames replaced by a newer one before they were sent

    def __len__(self) -> int:
        return len(self._items)

    def put(self, frame: Frame, now: float) -> bool:
        """Queue ``frame``; False when the queue is full (the caller disconnects the client)."""
        items = self._items
        key: Any = frame.conflate_key
        if key is not None and items.pop(key, None) is not None:
            self.conflated += 1
        elif len(items) >= self.max_frames:
            return False
        else:
            # The object itself is a unique key while it waits here: one frame object per event is
            # shared by every client, and each client's queue holds it at most once.
            key = key if key is not None else id(frame)
        items[key] = frame
        if self.pending_since is None:
            self.pending_since = now
            self._ready.set()
        return True

    def drain(self) -> list[Frame]:
        """Everything waiting, oldest first; the queue is empty afterwards."""
        frames = list(self._items.values())
        self._items.clear()
        self.pending_since = None
        self._ready.clear()
        return frames

    def clear(self) -> None:
        self.drain()

    async def wait(self) -> None:
        await self._ready.wait()
