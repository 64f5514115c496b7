"""Named steps: a stage's processors declared as data, and the walker that runs them for one key.

A ``Step`` names a processor (its string id), how to build it for a key, which input topics it
consumes and whose outputs it takes. ``Chain`` builds the steps for one key (a machine, a line) and
walks the declaration: an input record goes to every step consuming its topic, in declaration
order; each record a step derives is published and, at once (depth first), handed to every step
that takes that step's outputs. So causes come before their effects in the output, whatever the
declaration order.

>>> from processors.base import Emit
>>> class Doubler:
...     def __init__(self, key: str, config: object) -> None:
...         self.key = key
...     def process_one(self, topic: str, record: dict) -> list[Emit]:
...         return [Emit("doubled", self.key, {"n": record["n"] * 2})]
...     def advance(self, event_time_ms: int) -> list[Emit]:
...         return []
...     def snapshot(self) -> bytes:
...         return b'{"format":"doubler","version":1}'
...     def restore(self, data: bytes) -> None:
...         pass
>>> steps = (Step("double", Doubler, consumes=("numbers",)), Step("again", Doubler, takes=("double",)))
>>> [(e.topic, e.record["n"]) for e in Chain("k", steps, None).process_one("numbers", {"n": 3})]
[('doubled', 6), ('doubled', 12)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from processors.base import Emit, Processor, Record
from twin.errors import ConfigError, ProcessingError, SnapshotError, one_line

ProcessFn = Callable[[str, Record], list[Emit]]
AdvanceFn = Callable[[int], list[Emit]]
Instrument = Callable[[str, Callable[..., list[Emit]]], Callable[..., list[Emit]]]
"""Wraps a step's ``process_one`` or ``advance`` (given the step id), e.g. to time it; the pipeline's
metrics hook in here so processors stay free of them."""


@dataclass(frozen=True, slots=True)
class Step:
    """One processing step: ``make(key, config)`` builds its processor for a key.

    ``consumes``: the stage's input topics it reads. ``takes``: ids of the steps whose derived
    records it reads (declared before or after it; no cycles).
    """

    id: str
    make: Callable[[str, Any], Processor]
    consumes: tuple[str, ...] = ()
    takes: tuple[str, ...] = ()


def check_steps(steps: Sequence[Step]) -> None:
    """A ``ConfigError`` for a declaration the walker cannot run: a duplicate id, an unknown or own
    id in ``takes``, or a cycle of steps feeding each other."""
    ids = [s.id for s in steps]
    known = set(ids)
    if len(known) != len(ids):
        msg = f"duplicate step ids in {ids}"
        raise ConfigError(msg)
    for step in steps:
        for source in step.takes:
            if source not in known or source == step.id:
                msg = f"step {step.id!r} takes the outputs of {source!r}, which is not another step"
                raise ConfigError(msg)
    feeds = {s.id: [t.id for t in steps if s.id in t.takes] for s in steps}

    def visit(node: str, path: tuple[str, ...]) -> None:
        for nxt in feeds[node]:
            if nxt in path:
                msg = f"steps feed each other in a cycle: {' -> '.join((*path, nxt))}"
                raise ConfigError(msg)
            visit(nxt, (*path, nxt))

    for step_id in ids:
        visit(step_id, (step_id,))


def inputs_of(steps: Iterable[Step]) -> tuple[str, ...]:
    """The input topics a declaration consumes, in first-mention order."""
    return tuple(dict.fromkeys(topic for step in steps for topic in step.consumes))


class Chain:
    """The processors of one key, built from a step declaration and walked in its order.

    A step that raises becomes a ``ProcessingError`` naming the step (the pipeline dead-letters the
    input with it). ``instrument`` wraps each step's ``process_one`` and ``advance``.
    """

    __slots__ = ("_advance", "_by_topic", "_takers", "key", "processors")

    def __init__(
        self, key: str, steps: Sequence[Step], config: Any, instrument: Instrument | None = None
    ) -> None:
        check_steps(steps)
        self.key = key
        self.processors: dict[str, Processor] = {s.id: s.make(key, config) for s in steps}
        wrap = instrument or (lambda _id, fn: fn)
        process: dict[str, ProcessFn] = {s.id: wrap(s.id, self.processors[s.id].process_one) for s in steps}
        self._advance: list[tuple[str, AdvanceFn]] = [
            (s.id, wrap(s.id, self.processors[s.id].advance)) for s in steps
        ]
        self._by_topic: dict[str, list[tuple[str, ProcessFn]]] = {}
        for s in steps:
            # A processor may decline some of its step's topics for its key (``ignores``: e.g. KPIs
            # need readings only for a continuous machine): not called for them at all.
            ignored: frozenset[str] = getattr(self.processors[s.id], "ignores", frozenset())
            for topic in s.consumes:
                if topic not in ignored:
                    self._by_topic.setdefault(topic, []).append((s.id, process[s.id]))
        self._takers: dict[str, list[tuple[str, ProcessFn]]] = {
            s.id: [(t.id, process[t.id]) for t in steps if s.id in t.takes] for s in steps
        }

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        """Everything one input record causes, causes before effects."""
        out: list[Emit] = []
        for step_id, fn in self._by_topic.get(topic, ()):
            self._route(step_id, self._call(step_id, fn, topic, record), out)
        return out

    def advance(self, event_time_ms: int) -> list[Emit]:
        """Event time moved on: each step's due records (in declaration order), with their effects."""
        out: list[Emit] = []
        for step_id, fn in self._advance:
            try:
                emits = fn(event_time_ms)
            except Exception as exc:
                failure = _failed(step_id, exc)
                if failure is exc:
                    raise
                raise failure from exc
            self._route(step_id, emits, out)
        return out

    def _call(self, step_id: str, fn: ProcessFn, topic: str, record: Record) -> list[Emit]:
        try:
            return fn(topic, record)
        except Exception as exc:
            failure = _failed(step_id, exc)
            if failure is exc:
                raise
            raise failure from exc

    def _route(self, step_id: str, emits: list[Emit], out: list[Emit]) -> None:
        if not emits:
            return
        takers = self._takers[step_id]
        if not takers:
            out += emits
            return
        for emit in emits:
            out.append(emit)
            for taker_id, fn in takers:
                self._route(taker_id, self._call(taker_id, fn, emit.topic, emit.record), out)

    def snapshots(self) -> dict[str, bytes]:
        """Each step's snapshot, by step id."""
        return {step_id: p.snapshot() for step_id, p in self.processors.items()}

    def restore(self, parts: Mapping[str, bytes]) -> None:
        """Restore the steps named in ``parts``; the others start fresh. A step that cannot read its
        part is a ``SnapshotError`` naming the step."""
        for step_id, data in parts.items():
            processor = self.processors.get(step_id)
            if processor is None:
                continue
            try:
                processor.restore(data)
            except SnapshotError as exc:
                msg = f"step {step_id!r}: {exc}"
                raise SnapshotError(msg) from None


def _failed(step_id: str, exc: Exception) -> ProcessingError:
    if isinstance(exc, ProcessingError) and exc.step:
        return exc
    return ProcessingError(one_line(exc), step=step_id)
