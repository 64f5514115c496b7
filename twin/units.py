"""Quantities as operators read them.

>>> [human_duration(s) for s in (0.4, 42, 59.6, 61, 3600, 18_360, 90_061)]
['0.4 s', '42 s', '1 min', '1 min 1 s', '1 h', '5 h 6 min', '1 d 1 h']
"""

from __future__ import annotations

_STEPS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def human_duration(seconds: float) -> str:
    """A duration in its two largest units (``5 h 6 min``); under 10 s with a tenth."""
    if seconds < 10:
        return f"{round(seconds, 1):g} s"
    left = round(seconds)
    parts: list[str] = []
    for unit, size in _STEPS:
        if left >= size or (unit == "s" and not parts):
            amount, left = divmod(left, size)
            if amount:
                parts.append(f"{amount} {unit}")
        elif parts:
            break  # the next unit down is zero: '1 h', not '1 h 0 min'
        if len(parts) == 2:
            break
    return " ".join(parts)
