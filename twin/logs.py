"""Logging setup; called only by entry points (the CLI, workers), never on import."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(rich_tracebacks=False, show_path=False)],
        force=True,
    )
    # The client libraries are chatty at INFO about every connection and request (the schema
    # registry client logs each call through httpx2): shown only at DEBUG.
    for noisy in ("cassandra", "elastic_transport", "httpx", "httpx2", "httpcore", "twin.kafka.librdkafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
