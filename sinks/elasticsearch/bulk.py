"""What each item of a ``_bulk`` response means for the record behind it.

A bulk request answers 200 even when some items failed (``errors: true``): every item has to be
read. The split follows who can fix it:

==========================================  =========  ==========================================
item status                                  outcome    why
==========================================  =========  ==========================================
200, 201                                     written    created or replaced (same ``_id``)
409 on the current-alarms index              stale      a later lifecycle state is already there
429, 5xx                                     retry      overloaded or a shard unavailable: wait
401, 403, 404 (blocked, forbidden, no index)  retry      an operator fixes it (disk, roles, config);
                                                        dead-lettering would empty the stream
any other 4xx (mapping, parsing, argument)   reject     this document never fits: dead-letter it
==========================================  =========  ==========================================
"""

from __future__ import annotations

from enum import Enum
from typing import Any

# Statuses an operator can fix without touching the data; see the table above.
_OPERATOR_FIXABLE = frozenset({401, 403, 404})


class Outcome(Enum):
    WRITTEN = "written"
    STALE = "stale"
    RETRY = "retry"
    REJECT = "reject"


def classify(item: dict[str, Any], *, versioned: bool = False) -> tuple[Outcome, str]:
    """The outcome of one response item (``{"index": {...}}``) and, unless written, a one-line reason."""
    result = next(iter(item.values())) if item else {}
    status = int(result.get("status", 0))
    if 200 <= status < 300:
        return Outcome.WRITTEN, ""
    reason = error_reason(result.get("error"), status)
    if status == 409 and versioned:
        return Outcome.STALE, reason
    if status == 429 or status >= 500 or status in _OPERATOR_FIXABLE or status == 0:
        return Outcome.RETRY, reason
    return Outcome.REJECT, reason


def error_reason(error: Any, status: int) -> str:
    """``type: reason`` (and the root cause, where Elasticsearch nests one), on one line."""
    if not isinstance(error, dict):
        return f"status {status}: {error}" if error else f"status {status}"
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        text += f" (caused by {cause.get('type', 'error')}: {cause.get('reason', '')})"
    return " ".join(text.split())
