"""The gateway's parts wired together for one process: hub, Kafka feed, command publisher, history."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from twin.settings import Settings
from xr_gateway.auth import TokenVerifier
from xr_gateway.commands import CommandPublisher
from xr_gateway.feed import KafkaFeed
from xr_gateway.history import HistoryStore, MemoryHistory
from xr_gateway.hub import Hub
from xr_gateway.inbox import Inbox
from xr_gateway.layout import load_layout
from xr_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 0.5


class Gateway:
    def __init__(
        self,
        settings: Settings,
        gw: GatewaySettings,
        verifier: TokenVerifier,
        *,
        history: HistoryStore | None = None,
        kafka: bool = True,
    ) -> None:
        self.settings = settings
        self.gw = gw
        self.verifier = verifier
        self.hub = Hub(gw)
        self.layout = load_layout(gw.factory_file)  # a bad file is a ConfigError before we listen
        self.history: HistoryStore = history if history is not None else MemoryHistory(self.hub)
        self.allowed_origins = frozenset(o.rstrip("/") for o in gw.allowed_origins)
        self.kafka = kafka  # False: no feed and no commands (unit tests drive the hub directly)
        self.feed: KafkaFeed | None = None
        self.commands: CommandPublisher | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.inbox: Inbox | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.kafka:
            self.commands = CommandPublisher(self.settings, self.gw.topic_prefix)
            # The registry call inside start() blocks; keep the loop free while it runs.
            await asyncio.to_thread(self.commands.start)
            # Half a client queue per slice: a client that drains between slices never overflows.
            self.inbox = Inbox(loop, self.hub.publish, slice_max=self.gw.queue_max_frames // 2)
            self.feed = KafkaFeed(
                self.settings,
                self.gw.topic_prefix,
                deliver=self.inbox.push,
                on_ready=lambda: loop.call_soon_threadsafe(self.hub.mark_ready),
            )
            self.feed.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="gateway-sweeper")

    async def stop(self) -> None:
        for client in list(self.hub.clients):
            self.hub.kick(client, 1001, "gateway shutting down")
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.inbox is not None:
            self.inbox.close()
        if self.feed is not None:
            await asyncio.to_thread(self.feed.stop)
        if self.commands is not None:
            await asyncio.to_thread(self.commands.stop)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            self.hub.sweep()

    def origin_allowed(self, origin: str | None) -> bool:
        """Browsers always send Origin; a missing one is a non-browser client (its token still counts)."""
        return origin is None or origin.rstrip("/") in self.allowed_origins

    @property
    def ready(self) -> bool:
        feed_ok = self.feed is None or (self.feed.alive and self.feed.error is None)
        return self.hub.ready.is_set() and feed_ok
