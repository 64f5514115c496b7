"""What a detector says about one reading (``Finding``) and the ``Anomaly`` record it becomes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from processors.base import Record, derived_id

SOURCE = "processor:anomaly"
REGIME = "multivariate-regime"
SUBSPACE = "multivariate-subspace"
LEVEL = "level-rise"
STUCK = "stuck-sensor"
DROPPED = "dropped-sensor"
DETECTORS = (REGIME, SUBSPACE, LEVEL, STUCK, DROPPED)
"""Detector names (the ``detector`` field of an anomaly), in the order a reading visits them."""

MODEL_VERSION = 5
"""Version of the detectors' maths: the first part of every anomaly's ``model_version`` (bump it
when a change alters what the detectors raise)."""

Contribution = dict[str, Any]


@dataclass(slots=True)
class Finding:
    """One detector's verdict on one reading: its score, threshold and contributing signals (most
    contributing first)."""

    detector: str
    score: float
    threshold: float
    contributing: list[Contribution]


def contribution(name: str, unit: str, value: float | None, score: float) -> Contribution:
    return {"name": name, "value": value, "unit": unit, "score": score}


def strongest(detector: str, hits: list[tuple[float, float, Contribution]]) -> Finding | None:
    """The finding of a per-signal detector from its hits ``(score / threshold, threshold,
    contribution)``, one per signal over threshold: led by the signal furthest over; None if none."""
    if not hits:
        return None
    hits.sort(key=lambda h: -h[0])
    _, threshold, top = hits[0]
    return Finding(detector, top["score"], threshold, [h[2] for h in hits])


def anomaly_record(
    telemetry: Record, machine_id: str, finding: Finding, *, model_version: str, top: int
) -> Record:
    """The ``Anomaly`` record (plain form) of ``finding`` on the reading ``telemetry``; its id is
    derived from the detector and the reading, so a replay raises the same anomaly."""
    observed = str(telemetry["event_id"])
    return {
        "event_id": derived_id("anomaly", finding.detector, observed),
        "event_time": int(telemetry["event_time"]),
        "source": SOURCE,
        "correlation_id": observed,
        "line_id": str(telemetry.get("line_id") or ""),
        "machine_id": machine_id,
        "score": _finite(finding.score),
        "threshold": _finite(finding.threshold),
        "detector": finding.detector,
        "model_version": model_version,
        "contributing": [{**c, "score": _finite(c["score"])} for c in finding.contributing[:top]],
        "observed_event_id": observed,
    }


def _finite(x: float) -> float:
    # An anomaly's scores are finite numbers for its consumers; an infinite one is capped.
    return x if math.isfinite(x) else 1e300
