"""``python -m twin`` is the ``twin`` command."""

from __future__ import annotations

from twin.cli import main

main()
