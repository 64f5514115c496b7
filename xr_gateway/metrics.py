"""Prometheus metrics of the gateway (``/metrics``). No client or machine ids as labels."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CLIENTS = Gauge("twin_gateway_clients_connected", "Websocket clients connected")
FRAMES_OUT = Counter("twin_gateway_frames_sent_total", "Frames written to websocket clients")
FRAMES_DIRECT = Counter(
    "twin_gateway_frames_direct_total",
    "Of the frames sent, those written at once by the fan-out (the client had nothing queued)",
)
FRAMES_CONFLATED = Counter(
    "twin_gateway_frames_conflated_total", "Frames dropped because a newer one for the same key replaced them"
)
SLOW_DISCONNECTS = Counter("twin_gateway_slow_disconnects_total", "Clients closed (4008) for being too slow")
DISCONNECTS = Counter("twin_gateway_disconnects_total", "Clients closed by the gateway", ["reason"])
HANDSHAKES_REFUSED = Counter(
    "twin_gateway_handshakes_refused_total", "Websocket handshakes refused", ["reason"]
)
EVENTS_IN = Counter("twin_gateway_events_total", "Kafka events applied to the view", ["stream"])
DECODE_ERRORS = Counter(
    "twin_gateway_decode_errors_total", "Kafka records that could not be decoded", ["topic"]
)
CONSUMER_LAG = Gauge("twin_gateway_consumer_lag_records", "Records behind the end of each topic", ["topic"])
COMMANDS = Counter("twin_gateway_commands_total", "Alarm commands from clients", ["command", "outcome"])
RATE_LIMITED = Counter(
    "twin_gateway_client_messages_rate_limited_total", "Client messages refused by the rate limit"
)
INGEST_LATENCY = Histogram(
    "twin_gateway_ingest_latency_seconds",
    "Event time to the moment the gateway fans the event out",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
