"""What a line makes and how its machines group: stages, product families, setups, due dates.

A serial line is the special case of one machine per stage and identical parts. A hybrid flow
shop has parallel machines at a stage (one shared queue in front), product families with their own
processing times, sequence-dependent setups between families and orders with due dates. ``Line``
moves the parts; this module answers the questions about them, from tables built once.

>>> from sim.loader import load_factory
>>> spec = load_factory("job-shop").lines[0]
>>> mix = ProductMix(spec)
>>> [name for name, _ in spec.stages()], mix.families
(['press', 'mill', 'paint'], ('bracket', 'housing', 'flange'))
>>> mix.setup_s(1, "bracket", "housing") > 0 == mix.setup_s(1, "housing", "housing")
True
"""

from __future__ import annotations

import bisect
import random
import statistics
from itertools import accumulate

from sim.buffer import Buffer
from sim.layout import LineSpec, SetupSpec
from sim.machine import Machine


class Stage:
    """Parallel machines sharing one input queue (``None``: fed by the unlimited source)."""

    __slots__ = ("index", "machine_ids", "machines", "name", "queue")

    def __init__(self, index: int, name: str, machines: list[Machine], queue: Buffer | None) -> None:
        self.index = index
        self.name = name
        self.machines = machines
        self.machine_ids = tuple(m.machine_id for m in machines)
        self.queue = queue


class ProductMix:
    """The families of a line (none: identical parts), their nominal times, setups and due dates."""

    def __init__(self, spec: LineSpec) -> None:
        self._spec = spec
        self.families = tuple(f.id for f in spec.families)
        self._cumulative = list(accumulate(f.share for f in spec.families))
        default_due = spec.release.due_allowance_s if spec.release is not None else None
        self._allowance_ms: dict[str | None, int | None] = {None: _ms(default_due)}
        for f in spec.families:
            allowance = f.due_allowance_s if f.due_allowance_s is not None else default_due
            self._allowance_ms[f.id] = _ms(allowance)
        stages = spec.stages()
        line_wide = next((s for s in spec.setups if s.stage is None), None)
        by_stage = {s.stage: s for s in spec.setups if s.stage is not None}
        self._setups: list[SetupSpec | None] = [by_stage.get(name, line_wide) for name, _ in stages]
        # Nominal cycle seconds per station index and family (None: a part without family).
        self.nominal_s: list[dict[str | None, float]] = []
        stage_of = {si: name for name, members in stages for si in members}
        for si, station in enumerate(spec.stations):
            table: dict[str | None, float] = {None: station.ideal_cycle_time_s}
            for f in spec.families:
                table[f.id] = f.cycle_times_s.get(
                    station.id, station.ideal_cycle_time_s * f.processing_factor.get(stage_of[si], 1.0)
                )
            self.nominal_s.append(table)
        # Work after stage k, each later stage at the mean over its machines, per family.
        self.later_s: dict[str | None, list[float]] = {}
        for family in (None, *self.families):
            means = [statistics.fmean(self.nominal_s[si][family] for si in members) for _, members in stages]
            self.later_s[family] = [sum(means[k + 1 :]) for k in range(len(stages))]

    def draw(self, rng: random.Random) -> str | None:
        """A family by share (``None`` on a line without families; no random number is used then)."""
        if not self.families:
            return None
        return self.families[bisect.bisect_right(self._cumulative, rng.random() * self._cumulative[-1])]

    def due_ms(self, family: str | None, released_ms: int) -> int | None:
        allowance = self._allowance_ms.get(family)
        return None if allowance is None else released_ms + allowance

    def setup_s(self, stage_index: int, origin: str | None, target: str | None) -> float:
        """Seconds to change a machine of the stage from ``origin`` to ``target``; a machine not yet
        set up for any family, and a part without family, need none."""
        if origin is None or target is None or origin == target:
            return 0.0
        setup = self._setups[stage_index]
        if setup is None:
            return 0.0
        return setup.times_s.get(origin, {}).get(target, setup.default_s)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)
