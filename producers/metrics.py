"""Prometheus metrics of producers (names: twin_producer_<thing>_<unit>)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_PRODUCED = Counter("twin_producer_events_produced_total", "Events handed to the Kafka client")
EVENTS_ACKED = Counter("twin_producer_events_acked_total", "Events acknowledged by all in-sync replicas")
EVENTS_FAILED = Counter("twin_producer_events_failed_total", "Events whose delivery failed for good")
EVENTS_INVALID = Counter("twin_producer_events_invalid_total", "Input records rejected by schema validation")
QUEUE_FULL = Counter("twin_producer_queue_full_total", "Times the local queue was full (back-pressure waits)")
IN_FLIGHT = Gauge("twin_producer_in_flight_messages", "Messages produced but not yet acknowledged")
