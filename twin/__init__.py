"""Factory Twin's shared kernel: settings, errors, client factories, the CLI."""

from __future__ import annotations

__version__ = "0.1.0"
