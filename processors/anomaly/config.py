"""Settings of the anomaly detectors, with the reasoning behind each default."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AnomalyConfig(BaseModel):
    """How the per-machine detectors learn, calibrate and report.

    Times are event time (the telemetry's ``event_time``), never the wall clock, so a replay gives
    the same anomalies. Thresholds are not set here: each detector calibrates its own from the
    quantiles of what it saw in normal operation; these fields only say *how* it calibrates.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    warmup_s: float = Field(600.0, gt=0)
    """Per machine: learn for this long (event time) before raising anything."""
    warmup_events: int = Field(120, ge=10)
    """...and for at least this many readings, so a slow sample rate still calibrates."""
    quantile: float = Field(0.999, gt=0.5, lt=1)
    """Score quantile of normal operation that calibrates the multivariate threshold and the signal
    envelopes: at 0.999 one reading in a thousand is at the edge of normal."""
    regime_margin: float = Field(1.5, ge=1)
    """The multivariate threshold is this multiple of the calibrated score quantile: a quantile of a
    few thousand scores is itself noisy, and an alarm should need a clear step beyond the edge."""
    level_margin: float = Field(0.5, ge=0)
    """``level-rise`` fires when a signal's smoothed value exceeds its calibrated upper quantile in
    the current operating state by this fraction of that quantile's distance from the median (so
    the margin scales with each signal's own normal spread in that state)."""
    level_span: int = Field(120, ge=1)
    """Readings averaged (EWMA span) before ``level-rise`` compares a signal with its envelope:
    long enough to average a few parts' load variation, short enough to follow a temperature."""
    state_groups: dict[str, str] = Field(default_factory=lambda: {"STARVED": "IDLE", "BLOCKED": "IDLE"})
    """Machine states (``factory.state``) that share one learned baseline: a starved or blocked
    machine idles like an idle one. Any other state is its own context; reasons are never used."""
    unplanned_states: tuple[str, ...] = ("DOWN",)
    """Machine states (``factory.state``; DOWN is "unplanned stop" in its schema) where slow signals
    get no relaxation allowance (``relax_margin``): a stop that lasts longer, and so cools further,
    than the stops learned so far is worth a look. In every other state a machine may wait as long
    as it likes (a break, a starved line) and its slow signals may relax past the learned baseline."""
    relax_margin: float = Field(2.0, ge=0)
    """Settling (lag) model: after a change of state, a signal that drifts in the direction it
    learned to drift in that state (a temperature cooling while idle) is not anomalous for the
    multivariate detector while it stays within this multiple of its learned drift rate x time
    since the change (a first-order relaxation never moves faster than it started) and does not turn
    back; 0 disables the allowance."""
    multivariate: Literal["auto", "regime", "subspace", "both"] = "auto"
    """Which multivariate detector judges a machine. ``multivariate-regime`` (prototypes per
    operating state) suits machines with discrete states (running, idle, a setup) and is used once a
    machine reports a state on ``factory.state``; ``multivariate-subspace`` (PCA T², SPE and a
    per-signal shift statistic) suits a continuous process with many coupled signals and no states,
    and is used while a machine has reported none ("auto"). "regime"/"subspace" force one, "both"
    runs both."""
    subspace_lags: int = Field(0, ge=0, le=5)
    """``multivariate-subspace``: earlier readings appended to each reading (dynamic PCA): lags
    capture the process dynamics at the cost of (lags + 1)² more memory and time."""
    subspace_variance: float = Field(0.9, gt=0, le=1)
    """Share of the (standardised) variance the retained principal components explain."""
    subspace_quantile: float = Field(0.999, gt=0.5, lt=1)
    """Quantile of each statistic in calibration (the second half of the warm-up, scored out of
    sample with the model fitted on the first half) that becomes its control limit."""
    subspace_stat_span: float = Field(5.7, ge=1)
    """EWMA span (readings) of the T², SPE and peak statistics (5.7: weight 0.3 on the newest): an
    increase in variance, a small shift, builds up instead of drowning in single-reading noise."""
    subspace_shift_span: float = Field(39.0, ge=1)
    """EWMA span (readings) of each signal's standardised value for the shift statistic (39: weight
    0.05): a small shift that persists (a disturbance the controllers compensate elsewhere)."""
    subspace_shift_margin: float = Field(1.5, ge=1)
    """The shift statistic's limit is this multiple of its calibrated quantile: a warm-up of a day
    shows less slow wander than a plant has over weeks."""
    drift_tau_s: float = Field(7 * 86400.0, ge=0)
    """Slow legitimate drift (event time constant, seconds): after warm-up a detector's baseline
    (the ``level-rise`` envelopes' centre, the subspace centre) follows normal readings with weight
    (seconds since the last reading) / ``drift_tau_s`` per reading, whatever the sampling period.
    Only readings well inside the limits, with no episode open, teach it (an ongoing anomaly never
    teaches itself normal). 0 freezes the baselines."""
    confirm_hits: int = Field(3, ge=1)
    """A detector opens an episode after this many over-threshold readings..."""
    confirm_window: int = Field(5, ge=1)
    """...among its last this-many readings ("k of n"), so a single spike is not an alarm."""
    clear_after: int = Field(60, ge=1)
    """Readings without any over-threshold score before an episode closes..."""
    clear_after_s: float = Field(900.0, gt=0)
    """...or this many seconds (event time) without one, whichever comes first: at one reading a
    second 60 readings is a minute, at a reading every 5 minutes it would be five hours."""
    reemit_every_s: float = Field(60.0, gt=0)
    """While an episode lasts, repeat its anomaly at most this often (a heartbeat, not a flood)."""
    adopt_after_s: float = Field(540.0, gt=0)
    """A new operating state the multivariate detector keeps flagging this long is adopted as
    normal (a planned stop, a setup, a product change): it raises one episode, not one per
    occurrence. Shorter excursions (a jam, a spike) stay abnormal. Rising signals, stuck and
    dropped sensors are never adopted."""
    prototype_radius: float = Field(2.0, gt=0)
    """Operating states closer than this (noise units per signal) to a known one refine it instead
    of adding a new one."""
    max_prototypes: int = Field(400, ge=8)
    """Memory bound of the multivariate detector; the least used state is forgotten first."""
    stuck_alpha: float = Field(1e-6, gt=0, lt=1)
    """A repeated value is stuck once a run that long would happen with this probability, given the
    signal's learned rate of exact repeats."""
    stuck_min_run: int = Field(10, ge=2)
    """...and never after fewer identical readings than this."""
    dropped_min_run: int = Field(3, ge=1)
    """Missing values in a row before a dropped sensor counts, at least (doubles the longest gap
    seen in normal operation if that is longer)."""
    noise_span: int = Field(1000, ge=10)
    """Readings over which a signal's noise scale (mean absolute change) is averaged."""
    top_signals: int = Field(3, ge=1)
    """Contributing signals listed in an anomaly, most contributing first."""

    def digest(self) -> str:
        """Short hash of these settings: part of every anomaly's model version."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:8]
