"""Machine states, as the exact uppercase strings that travel in events.

``StateChangeEvent.reason`` says why a machine entered its new state:

- ``RUNNING``: ``part_arrived`` (was STARVED), ``unblocked`` (was BLOCKED), ``resumed``, ``break_over``,
  ``repaired``, ``jam_cleared``, ``maintenance_done``, ``changeover_done``, ``setup_done``,
  ``machine_failed`` / ``policy_changed`` (a dispatch decision after a peer failed or a new policy)
- ``STARVED``: ``upstream_empty``, ``dispatch_wait`` (the policy left the machine idle with work
  waiting); ``BLOCKED``: ``downstream_full``
- ``DOWN``: ``breakdown`` (random, from MTBF/MTTR), ``jam`` (a fault), ``maintenance`` (an action)
- ``SETUP``: ``changeover``, ``setup:<from>-><to>`` (a family change on a shop line); ``IDLE``:
  ``paused`` (an action), ``planned_break``
- any state: ``start`` for the first event of a machine (``previous=None``)

For OEE: IDLE is time not scheduled for production; SETUP and DOWN are availability losses.
"""

from __future__ import annotations

from enum import StrEnum


class MachineState(StrEnum):
    RUNNING = "RUNNING"
    """Processing a part."""
    IDLE = "IDLE"
    """Able to work but held on purpose: paused by an operator or agent, or a planned break."""
    STARVED = "STARVED"
    """Waiting for a part: the upstream buffer is empty."""
    BLOCKED = "BLOCKED"
    """Holding a finished part: the downstream buffer is full."""
    DOWN = "DOWN"
    """Out of service: breakdown, jam or maintenance."""
    SETUP = "SETUP"
    """Planned changeover."""
