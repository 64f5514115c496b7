"""What is normal for one machine in one operating state (its *context*), and the machine's current
stay in one (its *visit*).

A machine reports its operating state (RUNNING, IDLE, DOWN, ...) on ``factory.state``. Signals
that are normal in one state are abnormal in another (a spindle at 0 rpm, a spray booth's air
pressure rising when it idles), so each context learns its own baseline: the multivariate
prototypes and their threshold (``RegimeDetector``), the level envelopes (``LevelRise``) and how
each signal drifts in it (``Drift``). A context calibrates on its first ``warmup_events`` readings
(and not before the machine's warm-up ends); until then its regime and level detectors learn and
score nothing. With no state events a machine has one context.

>>> from processors.anomaly.config import AnomalyConfig
>>> ctx = Context(AnomalyConfig())
>>> ctx.add_signal(20.0)
>>> ctx.calibrated, ctx.regime.width, ctx.level.threshold
(False, 1, 1.5)
"""

from __future__ import annotations

from typing import Any

from processors.anomaly.config import AnomalyConfig
from processors.anomaly.level import Envelope, LevelRise
from processors.anomaly.regime import RegimeDetector
from processors.anomaly.serial import bool_list, float_list, floats, integer, opt_float_list, opt_floats
from processors.anomaly.settling import Drift, Relaxation

_SETTLE_HISTORY = 50
"""Settling times (s) a context remembers (for inspection; no detector reads them)."""


def _regime(config: AnomalyConfig) -> dict[str, Any]:
    return {
        "radius": config.prototype_radius,
        "max_prototypes": config.max_prototypes,
        "quantile": config.quantile,
        "margin": config.regime_margin,
    }


class Context:
    """Baselines of one operating state of one machine; see the module docstring."""

    def __init__(self, config: AnomalyConfig) -> None:
        self.regime = RegimeDetector(**_regime(config))
        self.level = LevelRise(config)
        self.drift = Drift()
        self.n = 0  # readings learned while calibrating
        self.calibrated = False
        self.entries = 0  # times the machine entered this context
        self.longest = 0  # readings of the longest stay seen while calibrating (or learned since)
        self.settle_s: list[float] = []  # how long after entering it all signals were in envelope

    def add_signal(self, first_value: float) -> None:
        """A signal joined the machine; until it is calibrated here its envelopes are open."""
        self.regime.add_signal(first_value)
        self.drift.add_signal()
        self.level.add_signal()

    def freeze(self) -> None:
        """End calibration of the context: raw envelopes are fixed (signals never seen stay
        open); smoothed envelopes keep learning until each has seen enough settled readings."""
        self.level.freeze()
        self.calibrated = True

    def settled_after(self, seconds: float) -> None:
        self.settle_s = [*self.settle_s[-(_SETTLE_HISTORY - 1) :], seconds]

    def to_dict(self) -> dict[str, Any]:
        return {
            "regime": self.regime.to_dict(),
            "level": self.level.to_dict(),
            "drift": self.drift.to_dict(),
            "n": self.n,
            "calibrated": self.calibrated,
            "entries": self.entries,
            "longest": self.longest,
            "settle_s": floats(self.settle_s),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], config: AnomalyConfig, signals: int) -> Context:
        ctx = cls(config)
        ctx.regime = RegimeDetector.from_dict(d["regime"], **_regime(config))
        ctx.level = LevelRise.from_dict(d["level"], config)
        ctx.drift = Drift.from_dict(d["drift"])
        if not ctx.regime.width == len(ctx.level.raw.hi) == len(ctx.drift.net) == signals:
            msg = f"a context's detectors do not cover the machine's {signals} signals"
            raise ValueError(msg)
        ctx.n = integer(d["n"])
        ctx.calibrated = d["calibrated"] is True
        ctx.entries = integer(d["entries"])
        ctx.longest = integer(d["longest"])
        ctx.settle_s = float_list(d["settle_s"])
        return ctx


class Visit:
    """The machine's current stay in one context: everything that restarts on a change of state.

    ``smoothed``: each signal's EWMA since the visit began (level-rise); ``armed``: the signal may
    raise level-rise (it has been at or below its envelope's top, or the visit is long);
    ``settled``: it has been inside its envelope (the multivariate detector waits for all);
    ``recent``: the last raw multivariate scores (a persistence filter); ``held``: readings held back
    while the multivariate detector is in alarm, learned if the new combination is adopted."""

    def __init__(self, key: str, entered_at: int, before: list[float | None]) -> None:
        n = len(before)
        self.key = key
        self.entered_at = entered_at  # event time the visit began
        self.readings = 0  # readings scored in this visit
        self.smoothed: list[float | None] = [None] * n
        self.armed = [False] * n
        self.settled = [False] * n
        self.all_settled = False
        self.recent: list[float] = []
        self.held: list[list[float]] = []
        self.relaxation = Relaxation(before)
        # A planned state's stay longer than any its context was calibrated on: learning, not
        # detecting, for the rest of the stay (``AnomalyProcessor.learning``).
        self.extending = False

    def add_signal(self, value: float | None) -> None:
        """A signal joined during the visit (``value``: its first value)."""
        self.smoothed.append(None)
        self.armed.append(False)
        self.settled.append(False)
        self.relaxation.add_signal(value)
        # Held readings get the value every known state is assumed to have had (``Context``).
        for x in self.held:
            x.append(0.0 if value is None else value)

    def settle(self, values: list[float | None], raw: Envelope, t: int, *, arm_all: bool) -> float | None:
        """After a change of state a signal is compared with this state's envelope ``raw`` only once it
        has come inside it (a temperature still cooling from the last state is thermal lag, not a
        fault); one that starts at or below the envelope is watched for a rise at once. ``arm_all``:
        long after the change, a signal still above its envelope is no longer settling but a fault.
        Returns the seconds since the change when this reading is the one that settles them all."""
        if arm_all:
            self.armed = [True] * len(values)
        for i, v in enumerate(values):
            if v is None or self.settled[i]:
                continue
            if v <= raw.hi[i]:
                self.armed[i] = True
                if v >= raw.lo[i]:
                    self.settled[i] = True
        if not self.all_settled and all(self.settled):
            self.all_settled = True
            return (t - self.entered_at) / 1000
        return None

    def smooth(self, values: list[float | None], alpha: float) -> list[float | None]:
        """Update and return the smoothed values (a missing value leaves its signal's unchanged)."""
        sm = self.smoothed
        for i, v in enumerate(values):
            if v is not None:
                e = sm[i]
                sm[i] = v if e is None else e + (v - e) * alpha
        return sm

    def persistent_score(self, raw: float) -> float:
        """The least abnormal of the last three multivariate scores: the one or two samples of a
        fast transition never count."""
        self.recent = [*self.recent[-2:], raw]
        return min(self.recent)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "entered_at": self.entered_at,
            "readings": self.readings,
            "smoothed": opt_floats(self.smoothed),
            "armed": list(self.armed),
            "settled": list(self.settled),
            "all_settled": self.all_settled,
            "recent": floats(self.recent),
            "held": [floats(x) for x in self.held],
            "relaxation": self.relaxation.to_dict(),
            "extending": self.extending,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], signals: int) -> Visit:
        v = cls(str(d["key"]), integer(d["entered_at"]), [None] * signals)
        v.readings = integer(d["readings"])
        v.smoothed = opt_float_list(d["smoothed"], signals)
        v.armed, v.settled = bool_list(d["armed"], signals), bool_list(d["settled"], signals)
        v.all_settled = d["all_settled"] is True
        v.recent = float_list(d["recent"])
        v.held = [float_list(x, signals) for x in d["held"]]
        v.relaxation = Relaxation.from_dict(d["relaxation"], signals)
        v.extending = d["extending"] is True
        return v
