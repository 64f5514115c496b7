"""Where REST reads recent alarms and KPIs from: the seam for the Cassandra sinks.

Today the gateway answers from its own in-memory view (what it has seen since it started). When the
sinks run, a ``HistoryStore`` backed by Cassandra (``sinks/cassandra``'s tables) plugs in through
``create_app(..., history=...)`` and nothing else changes.
"""

from __future__ import annotations

from typing import Any, Protocol

from xr_gateway.hub import CLOSED_ALARM, Hub


class HistoryStore(Protocol):
    def recent_alarms(
        self, *, machine_id: str | None, line_id: str | None, open_only: bool, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first."""
        ...

    def recent_kpis(
        self, *, line_id: str | None, scope_id: str | None, window_size_s: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first."""
        ...


class MemoryHistory:
    """The last ``history_max`` alarm events and KPI windows the gateway saw."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def recent_alarms(
        self, *, machine_id: str | None, line_id: str | None, open_only: bool, limit: int
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for record in reversed(self.hub.recent_alarms):
            alarm_id = str(record["alarm_id"])
            if open_only and (alarm_id in seen or record.get("status") == CLOSED_ALARM):
                seen.add(alarm_id)  # an alarm's newest event decides whether it is open
                continue
            seen.add(alarm_id)
            if machine_id is not None and record.get("machine_id") != machine_id:
                continue
            if line_id is not None and record.get("line_id") != line_id:
                continue
            out.append(record)
            if len(out) >= limit:
                break
        return out

    def recent_kpis(
        self, *, line_id: str | None, scope_id: str | None, window_size_s: int | None, limit: int
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for record in reversed(self.hub.recent_kpis):
            if line_id is not None and record.get("line_id") != line_id:
                continue
            if scope_id is not None and record.get("scope_id") != scope_id:
                continue
            if window_size_s is not None and record.get("window_size_s") != window_size_s:
                continue
            out.append(record)
            if len(out) >= limit:
                break
        return out
