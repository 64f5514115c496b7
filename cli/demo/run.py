"""One demo run: what its steps share, and the clean-up that runs however it ends."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from cli.demo.children import Child, Children, shielded
from cli.demo.offsets import Offsets
from cli.infra import _infra, console
from twin.topics import (
    ALARMS,
    ANOMALIES,
    KPIS,
    MAINTENANCE,
    PRODUCTION,
    SCHEDULE_PLANS,
    SCHEDULE_REQUESTS,
    STATE,
    TELEMETRY,
    TWIN_STATE,
)

if TYPE_CHECKING:
    from cli.demo.gateway import DemoGateway
    from cli.demo.watcher import Watcher
    from twin.settings import Settings

T = TypeVar("T")

SOURCE_TOPICS = (TELEMETRY, PRODUCTION, STATE)  # what the simulated line publishes
# what the worker makes of it
DERIVED_TOPICS = (ANOMALIES, MAINTENANCE, ALARMS, KPIS, TWIN_STATE, SCHEDULE_REQUESTS)
PLAN_TOPICS = (SCHEDULE_PLANS,)  # what the scheduler answers


@dataclass(frozen=True)
class Options:
    """What the user chose on the command line."""

    duration: float  # wall seconds of streaming
    speed: float  # simulated seconds per wall second
    seed: int
    gateway_port: int | None


class DemoRun:
    """The settings, the child processes, and what earlier steps found for later ones.

    ``with run:`` guarantees the way out: clean-ups registered with ``on_exit`` run (newest first),
    then every child process is stopped.
    """

    def __init__(self, settings: Settings, options: Options) -> None:
        from sim import DEFAULT_FACTORY_PATH, load_factory

        self.settings = settings
        self.options = options
        from producers.runs import RunId

        self.run_id = RunId.new()
        # A fresh worker group per run: each run replays its own stretch of simulated past, which
        # a worker that saw the last demo's (later) events would count as late.
        self.app_id = f"twin-demo-{self.run_id.launched_ms // 1000}"
        self.factory_path = DEFAULT_FACTORY_PATH  # the simulator and the worker use the same line
        self.factory = load_factory(self.factory_path)
        self.infra = _infra(settings)
        self.children = Children(settings.infra.root / "logs")
        self.sinks: dict[str, Child] = {}
        self.worker: Child | None = None
        self.scheduler: Child | None = None
        self.watcher: Watcher | None = None
        self.gateway: DemoGateway | None = None
        self.produced: dict[str, int] = {}  # per source topic (all acknowledged once the line ends)
        self.before: Offsets = {}  # source topics' ends before the line streamed
        self.after: Offsets = {}  # and after
        self.started_ms = 0  # when the line started streaming (= its first simulated instant)
        self.last_event_ms = 0  # the simulated time of its last event
        self._cleanups = ExitStack()

    @property
    def machines(self) -> list[str]:
        """The ids of the factory's machines, line by line, in line order."""
        return [s.id for line in self.factory.lines for s in line.stations]

    def on_exit(self, callback: Callable[[], object]) -> None:
        self._cleanups.callback(callback)

    def __enter__(self) -> DemoRun:
        self.children.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        interrupted = exc_type is not None and not issubclass(exc_type, Exception)  # Ctrl-C, SIGTERM
        with console.status("stopping the demo's workers…") if interrupted else nullcontext():
            try:
                with shielded():
                    self._cleanups.close()
            finally:
                self.children.__exit__(exc_type, exc, tb)


def started(thing: T | None, what: str) -> T:
    """``thing``, which an earlier step must have started (the step order is wrong otherwise)."""
    if thing is None:
        msg = f"demo step order: {what} is used before the step that starts it"
        raise RuntimeError(msg)
    return thing
