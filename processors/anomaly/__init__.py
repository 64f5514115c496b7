"""Online anomaly detection for one machine: a multivariate operating-state detector plus per-signal
detectors for rising levels, stuck and dropped sensors; a subspace (PCA) detector for continuous
multichannel processes. See docs/anomaly-detection.md."""

from __future__ import annotations

from processors.anomaly.config import AnomalyConfig
from processors.anomaly.context import Context, Visit
from processors.anomaly.dropped import DroppedSensor
from processors.anomaly.episode import Episode
from processors.anomaly.finding import DETECTORS, MODEL_VERSION, Finding
from processors.anomaly.level import Envelope, LevelRise
from processors.anomaly.processor import SNAPSHOT_FORMAT, SNAPSHOT_VERSION, AnomalyProcessor
from processors.anomaly.quantile import Quantile
from processors.anomaly.regime import RegimeDetector
from processors.anomaly.settling import Drift, Relaxation
from processors.anomaly.signal import Signal
from processors.anomaly.stuck import StuckSensor
from processors.anomaly.subspace import SubspaceDetector

__all__ = [
    "DETECTORS",
    "MODEL_VERSION",
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_VERSION",
    "AnomalyConfig",
    "AnomalyProcessor",
    "Context",
    "Drift",
    "DroppedSensor",
    "Envelope",
    "Episode",
    "Finding",
    "LevelRise",
    "Quantile",
    "RegimeDetector",
    "Relaxation",
    "Signal",
    "StuckSensor",
    "SubspaceDetector",
    "Visit",
]
