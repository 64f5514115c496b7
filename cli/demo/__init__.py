"""``twin demo``: the local stack up, the simulated line streamed, processed, stored and read back.

``command.STEPS`` is the whole job in order; each step is a small function in the module of its
concern (``stack``, ``workers``, ``gateway``, ``line``, ``readback``, ``hints``), and ``children``
alone starts and stops the child processes.
"""

from __future__ import annotations

from cli.demo.command import STEPS, demo

__all__ = ["STEPS", "demo"]
