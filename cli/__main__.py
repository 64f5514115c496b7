"""``python -m cli`` is the ``twin`` command."""

from __future__ import annotations

from cli import main

main()
