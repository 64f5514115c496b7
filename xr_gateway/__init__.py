"""The XR gateway: Kafka (twin.state, alarms, KPIs, anomalies, plans) fanned out to websocket
clients, alarm commands back to Kafka, and a small REST API. Protocol: docs/gateway.md."""

from __future__ import annotations

from xr_gateway.app import create_app
from xr_gateway.auth import Principal, Role, TokenVerifier
from xr_gateway.filters import STREAMS, Subscription
from xr_gateway.hub import CLOSE_TOO_SLOW, Hub
from xr_gateway.service import Gateway
from xr_gateway.settings import GatewaySettings

__all__ = [
    "CLOSE_TOO_SLOW",
    "STREAMS",
    "Gateway",
    "GatewaySettings",
    "Hub",
    "Principal",
    "Role",
    "Subscription",
    "TokenVerifier",
    "create_app",
]
