"""The ``twin`` command line: one Typer app, one clear line per error."""

from __future__ import annotations

from cli.app import app, main

__all__ = ["app", "main"]
