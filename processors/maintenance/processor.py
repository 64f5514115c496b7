"""Per machine: remaining-useful-life estimates on ``twin.maintenance`` from the machine's telemetry.

One ``MaintenanceProcessor`` per machine, pure (no Kafka, no I/O, no wall clock), like the other
per-machine steps. It feeds the machine's readings, taken in an operating state the model was
trained on (``MaintenanceConfig.states``, default RUNNING: what a spindle's vibration says at rest
is another matter), to the RUL model of its machine type (``processors.maintenance.rul``), and
publishes an estimate once the machine's current life has been observed for ``warmup_s``, then at
most every ``every_s`` of event time, and when the estimate crosses one of ``alert_s`` (checked every
``check_s``, so an alarm or a maintenance request is at most that late; the features take every
reading, the network runs only at the checks).

A machine's *life* starts again when it comes back from a DOWN whose reason renews it
(``renewing_reasons``: maintenance, or the repair after a wear failure): its model state is
forgotten. Within one life, the first estimate that falls below the longest of ``alert_s`` (the
first that matters to the MaintenanceDue rule and the maintenance request) is the root of the life's
cause chain: it and every later estimate of the life carry its event id as ``correlation_id``, and
so do the alarm and the maintenance request that follow from them. Earlier estimates are their own
roots. An estimate within 5 % of the model's cap is ``capped``: no sign of wear yet, the life left
is at least that.

>>> MaintenanceProcessor("cnc-1", MaintenanceConfig()).process_one("factory.telemetry", {})
[]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.base import Emit, Record, derived_id, dump_snapshot, load_snapshot
from processors.maintenance.rul import RULEstimator
from twin.topics import MAINTENANCE, STATE, TELEMETRY

SOURCE = "processor:maintenance"
SNAPSHOT_FORMAT = "maintenance"
SNAPSHOT_VERSION = 1
CAPPED = 0.95
"""An estimate at or above this share of the model's cap says "no sign of wear yet"."""
COMPONENT = "machine"
"""What the estimate is about: the machine's life to its next wear failure (of any component)."""

__all__ = ["MaintenanceConfig", "MaintenanceProcessor", "readings_for_model"]


@dataclass
class MaintenanceConfig:
    """What runs: a RUL model per machine type (none: the machine gets no estimates)."""

    models: dict[str, RULEstimator] = field(default_factory=dict)
    every_s: float = 60.0
    """Publish an estimate at most this often per machine..."""
    check_s: float = 10.0
    """...estimate every this often in between (the features take every reading; the network runs
    only then), so a crossing of ``alert_s`` is published at most this late..."""
    alert_s: tuple[float, ...] = (3600.0, 900.0)
    """...and at once when the estimate falls below one of these (the shipped MaintenanceDue rule's
    horizons, and the maintenance request's)."""
    warmup_s: float = 300.0
    """A life's estimates are published once it has been observed this long (event time of its
    readings): a trend fitted over the first seconds is noise, and says nothing yet."""
    states: tuple[str, ...] = ("RUNNING",)
    """Operating states whose readings the models take (the ones they were trained on)."""
    renewing_reasons: tuple[str, ...] = ("maintenance", "failure")
    """Leaving DOWN after one of these reasons starts a new life."""


def readings_for_model(
    t_s: float, state: str | None, values: Mapping[str, float | None], states: tuple[str, ...]
) -> dict[str, Any] | None:
    """The reading a model takes (signal values plus ``t`` in seconds), or None when the machine is
    not in one of ``states`` (training and serving both go through here, so they agree)."""
    if state is not None and state not in states:
        return None
    reading: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    reading["t"] = t_s
    return reading


class MaintenanceProcessor:
    """RUL estimates of one machine (see the module docstring)."""

    def __init__(self, machine_id: str, config: MaintenanceConfig) -> None:
        self.machine_id = machine_id
        self.config = config
        self.model: RULEstimator | None = None
        self.machine_type: str | None = None
        self.state: str | None = None
        self.down_reason = ""
        self.last_emit_ms: int | None = None
        self.last_rul: float = math.inf
        self.root: str | None = None
        self.first_ms: int | None = None
        self.last_check_ms: int | None = None
        self.life = 0

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        """Take one telemetry or state record of the machine; other topics give nothing."""
        if topic == STATE:
            self._state(record)
        elif topic == TELEMETRY and record:
            return self._telemetry(record)
        return []

    def _telemetry(self, record: Record) -> list[Emit]:
        model = self._model(record)
        if model is None:
            return []
        t_ms = int(record["event_time"])
        values = {c["name"]: c["value"] for c in record["channels"]}
        reading = readings_for_model(t_ms / 1000, self.state, values, self.config.states)
        if reading is None:
            return []
        if self.first_ms is None:
            self.first_ms = t_ms
        due = self.last_emit_ms is None or t_ms - self.last_emit_ms >= self.config.every_s * 1000
        check = self.last_check_ms is None or t_ms - self.last_check_ms >= self.config.check_s * 1000
        if t_ms - self.first_ms < self.config.warmup_s * 1000 or not (due or check):
            # Still learning this life's trend (says nothing yet), or nothing to say before the next
            # check: the features take the reading, the network is not run.
            model.observe_one(self.machine_id, reading)
            return []
        est = model.predict_one(self.machine_id, reading)
        if est.stale:
            return []  # a reading older than the model has seen (a replay): nothing new to say
        self.last_check_ms = t_ms
        cap = model.config.cap
        capped = est.rul >= CAPPED * cap
        low = est.lower
        crossed = any(est.rul < a <= self.last_rul for a in self.config.alert_s)
        if not (due or crossed):
            return []
        self.last_emit_ms = t_ms
        self.last_rul = est.rul
        observed = str(record["event_id"])
        event_id = derived_id("rul", self.machine_id, COMPONENT, observed)
        if self.root is None and est.rul < max(self.config.alert_s, default=0.0):
            self.root = event_id
        correlation = self.root if self.root is not None else event_id
        units = {c["name"]: c.get("unit", "") for c in record["channels"]}
        contributing = [
            {
                "name": name,
                "value": values.get(name),
                "unit": units.get(name, "s" if name == "age" else ""),
                "score": float(score),
            }
            for name, score in est.contributors
        ]
        estimate = {
            "event_id": event_id,
            "event_time": t_ms,
            "source": SOURCE,
            "correlation_id": correlation,
            "line_id": str(record.get("line_id") or ""),
            "machine_id": self.machine_id,
            "component": COMPONENT,
            "rul_s": float(est.rul),
            "rul_low_s": float(low),
            "rul_high_s": float(est.upper),
            "band": float(model.config.coverage),
            "capped": capped,
            "model_version": f"{est.model_version}#{self.life}.{est.readings}",
            "contributing": contributing,
            "observed_event_id": observed,
        }
        return [Emit(MAINTENANCE, self.machine_id, estimate)]

    def advance(self, event_time_ms: int) -> list[Emit]:
        """Nothing is due by time alone: estimates answer readings."""
        return []

    def _model(self, record: Record) -> RULEstimator | None:
        if self.model is None and record.get("machine_type"):
            self.machine_type = str(record["machine_type"])
            self.model = self.config.models.get(self.machine_type)
            if self.model is not None:
                self.model.forget(self.machine_id)  # a new processor starts a new watch of the machine
        return self.model

    def _state(self, record: Record) -> None:
        state = str(record["state"])
        if self.state == "DOWN" and state != "DOWN" and self.down_reason in self.config.renewing_reasons:
            self.renew()
        if state == "DOWN":
            reason = str(record.get("reason") or "")
            # A failure outranks a later reason (maintenance during the repair): the life ended.
            if self.state != "DOWN" or reason in self.config.renewing_reasons:
                self.down_reason = reason
        self.state = state

    def renew(self) -> None:
        """A new life (maintained, or repaired after a failure): the model forgets the machine."""
        if self.model is not None:
            self.model.forget(self.machine_id)
        self.life += 1
        self.root = None
        self.first_ms = None
        self.last_check_ms = None
        self.last_rul = math.inf
        self.last_emit_ms = None

    # -- snapshots ----------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        body = {
            "machine_id": self.machine_id,
            "machine_type": self.machine_type,
            "model_version": None if self.model is None else self.model.model_version,
            "unit": None if self.model is None else self.model.unit_state(self.machine_id),
            "state": self.state,
            "down_reason": self.down_reason,
            "last_emit_ms": self.last_emit_ms,
            "last_rul": None if math.isinf(self.last_rul) else self.last_rul,
            "root": self.root,
            "first_ms": self.first_ms,
            "last_check_ms": self.last_check_ms,
            "life": self.life,
        }
        return dump_snapshot(SNAPSHOT_FORMAT, SNAPSHOT_VERSION, body)

    def restore(self, data: bytes) -> None:
        from twin.errors import SnapshotError

        d = load_snapshot(data, SNAPSHOT_FORMAT, SNAPSHOT_VERSION)
        if d["machine_id"] != self.machine_id:
            msg = f"maintenance snapshot of {d['machine_id']!r}, not of {self.machine_id!r}"
            raise SnapshotError(msg)
        self.machine_type = d["machine_type"]
        self.model = None if self.machine_type is None else self.config.models.get(self.machine_type)
        if self.model is not None:
            if d["unit"] is not None and d["model_version"] == self.model.model_version:
                self.model.restore_unit(self.machine_id, d["unit"])
            else:
                self.model.forget(self.machine_id)  # another model now: it starts learning the life afresh
        self.state = d["state"]
        self.down_reason = d["down_reason"]
        self.last_emit_ms = d["last_emit_ms"]
        self.last_rul = math.inf if d["last_rul"] is None else float(d["last_rul"])
        self.root = d["root"]
        self.first_ms = d["first_ms"]
        self.last_check_ms = d["last_check_ms"]
        self.life = int(d["life"])
