"""The project's exception hierarchy: one root, a few precise subclasses."""

from __future__ import annotations


class TwinError(Exception):
    """Root of every error Factory Twin raises on purpose.

    The CLI prints ``str(error)`` as one line and exits non-zero; ``--debug`` shows the traceback.
    """


class ConfigError(TwinError):
    """Settings are missing, inconsistent or point at something unusable."""


class InfraError(TwinError):
    """A local server could not be fetched, started, checked or stopped."""


class PrerequisiteError(InfraError):
    """A tool the local stack needs (Java, Maven) is missing or too old."""


class PortInUseError(InfraError):
    """A port a local server needs is already taken by another process."""


class FetchError(InfraError):
    """Maven could not fetch a server's artifacts."""


class ServerCrashedError(InfraError):
    """A server process exited while starting; the message carries its last log lines."""


class HealthTimeoutError(InfraError):
    """A server did not become healthy within its time limit."""
