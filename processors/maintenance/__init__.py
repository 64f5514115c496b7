"""Predictive maintenance: remaining useful life (RUL) per unit, online, with an uncertainty band.
See docs/maintenance.md. ``processors.maintenance.cmapss`` reads and scores NASA C-MAPSS."""

from __future__ import annotations

from processors.maintenance.baseline import PointEstimate, RidgeRUL
from processors.maintenance.features import AGE, Features, feature_names
from processors.maintenance.rul import MODEL_FORMAT, MODEL_VERSION, Estimate, RULConfig, RULEstimator

__all__ = [
    "AGE",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "Estimate",
    "Features",
    "PointEstimate",
    "RULConfig",
    "RULEstimator",
    "RidgeRUL",
    "feature_names",
]
