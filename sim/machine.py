"""A station's runtime state: what it holds, why it is stopped, its counters, faults and sensors."""

from __future__ import annotations

import random

from sim.buffer import Buffer, Part
from sim.catalog import MACHINE_TYPES
from sim.effects import NO_EFFECTS, RAMPING, ActiveFault, Effects, combine
from sim.faults import FaultKind
from sim.layout import StationSpec
from sim.sensors import RUN, SensorBank


class Machine:
    """Mutable state of one station. ``Line`` moves parts and changes states; this class only keeps
    the bookkeeping consistent.

    ``down``, ``holds``: active causes (with counts, since e.g. a jam can overlap a breakdown) of DOWN
    and IDLE. ``active``: a processing segment is scheduled; ``epoch`` invalidates scheduled
    completion and breakdown events when the segment is interrupted.

    ``family``: the product family the machine is set up for; ``staged``: the part it chose, held
    during the setup that part needs; ``dispatch_wait``: the policy chose to leave it idle although
    work waits. ``nominal_s``: nominal cycle seconds by family (``None``: a part without family).
    """

    __slots__ = (
        "active",
        "bank",
        "changeover_due",
        "cycle_ms",
        "defect_reason",
        "dispatch_wait",
        "down",
        "downstream",
        "effects",
        "epoch",
        "family",
        "faults",
        "finished",
        "finished_ms",
        "good",
        "holds",
        "ideal_cycle_time_s",
        "inspects",
        "line_id",
        "load",
        "machine_id",
        "machine_type",
        "mode",
        "nominal_s",
        "part",
        "part_ideal_s",
        "ramping",
        "reason",
        "remaining_ms",
        "rng",
        "run_since",
        "scrap",
        "setup",
        "setup_reason",
        "since_changeover",
        "spec",
        "stage_index",
        "staged",
        "state",
        "targets_dirty",
        "ttf_ms",
        "upstream",
    )

    def __init__(self, spec: StationSpec, line_id: str, rng: random.Random, bank: SensorBank) -> None:
        self.spec = spec
        self.machine_id = spec.id
        self.line_id = line_id
        self.machine_type = spec.machine_type
        kind = MACHINE_TYPES.get(spec.machine_type)
        self.defect_reason = kind.defect_reason if kind else "defect"
        self.inspects = kind.inspects if kind else False
        self.ideal_cycle_time_s = spec.ideal_cycle_time_s
        self.rng = rng
        self.bank = bank
        self.upstream: Buffer | None = None
        self.downstream: Buffer | None = None
        self.stage_index = 0
        self.nominal_s: dict[str | None, float] = {None: spec.ideal_cycle_time_s}
        self.family: str | None = None
        self.staged: Part | None = None
        self.dispatch_wait = False
        self.state: str | None = None
        self.reason = ""
        self.mode = RUN
        self.part: Part | None = None
        self.finished: Part | None = None
        self.finished_ms = 0
        self.part_ideal_s = spec.ideal_cycle_time_s
        self.cycle_ms = 0
        self.remaining_ms = 0
        self.run_since = 0
        self.active = False
        self.epoch = 0
        self.ttf_ms: int | None = None
        self.down: dict[str, int] = {}
        self.holds: dict[str, int] = {}
        self.setup = False
        self.setup_reason = "changeover"
        self.changeover_due = False
        self.since_changeover = 0
        self.good = 0
        self.scrap = 0
        self.faults: list[ActiveFault] = []
        self.load = 1.0
        self.effects: Effects = NO_EFFECTS
        self.targets_dirty = True
        self.ramping = False

    def effects_at(self, now_ms: int) -> Effects:
        return combine(self.faults, now_ms) if self.faults else NO_EFFECTS

    def refresh_targets(self, now_ms: int) -> None:
        self.effects = self.effects_at(now_ms)
        self.bank.set_targets(self.mode, self.load, self.effects)
        self.targets_dirty = False

    def faults_changed(self) -> None:
        self.ramping = any(f.kind in RAMPING for f in self.faults)
        overrides: dict[int, float | None] = {}
        for f in self.faults:
            if f.channel is not None:
                overrides[f.channel] = f.stuck_value if f.kind is FaultKind.STUCK_SENSOR else None
        self.bank.overrides = overrides
        self.targets_dirty = True

    @property
    def held(self) -> Part | None:
        """The part in the machine: in process, set up for, or finished and waiting to move on."""
        return self.part or self.staged or self.finished

    def cycle_progress(self, now_ms: int) -> float:
        """Share of the current part's processing done: 0 with no part, 1 when holding a finished one."""
        if self.part is None:
            return 1.0 if self.finished is not None else 0.0
        done = self.cycle_ms - self.remaining_ms + (now_ms - self.run_since if self.active else 0)
        return min(1.0, max(0.0, done / self.cycle_ms))
