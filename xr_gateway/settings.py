"""Settings of the XR gateway (``twin gateway``, ``TWIN_GATEWAY__*``); they live in ``twin.settings``
with every other setting. Tests build one directly: ``GatewaySettings(topic_prefix="t1.", jwt_secret=...)``.
"""

from __future__ import annotations

from twin.settings import GatewaySettings, JwtAlgorithm

__all__ = ["GatewaySettings", "JwtAlgorithm"]
