"""Errors the simulator raises on purpose; a bad layout file is a ``twin.errors.ConfigError``."""

from __future__ import annotations

from twin.errors import TwinError


class SimulationError(TwinError):
    """An action, injected fault or run request the simulator cannot carry out (unknown machine, ...)."""
