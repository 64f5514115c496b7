"""Online anomaly detection per machine: a multivariate operating-state detector plus per-signal
detectors for rising levels, stuck and dropped sensors. See docs/anomaly-detection.md."""

from __future__ import annotations

from processors.anomaly.config import AnomalyConfig
from processors.anomaly.context import Context
from processors.anomaly.machine import DETECTORS, FORMAT_VERSION, MachineModel
from processors.anomaly.processor import TOPIC, AnomalyProcessor
from processors.anomaly.regime import RegimeDetector
from processors.anomaly.signal import Signal

__all__ = [
    "DETECTORS",
    "FORMAT_VERSION",
    "TOPIC",
    "AnomalyConfig",
    "AnomalyProcessor",
    "Context",
    "MachineModel",
    "RegimeDetector",
    "Signal",
]
