"""Episodes: when one detector's over-threshold readings become an alarm, and how often it repeats.

A detector's hits are confirmed "k of n": an episode opens on a hit that makes ``confirm_hits`` of
the last ``confirm_window`` readings hits, so a single spike is no alarm. While it is open, the
detector's anomaly is emitted again at most every ``reemit_every_s`` (a heartbeat, not a flood); it
closes after ``clear_after`` readings without a hit, or ``clear_after_s`` seconds of event time
without one, whichever comes first (a count of readings is a minute at 1 Hz but hours at a reading
every five minutes).

>>> from processors.anomaly.config import AnomalyConfig
>>> ep = Episode(AnomalyConfig(confirm_hits=2, confirm_window=3, clear_after=2, reemit_every_s=60))
>>> [ep.learn_one(hit, t) for t, hit in enumerate((True, False, True, True, False, False), 1)]
[False, False, True, False, False, False]
>>> ep.is_open
False
"""

from __future__ import annotations

from typing import Any

from processors.anomaly.config import AnomalyConfig
from processors.anomaly.serial import integer


class Episode:
    """Alarm state of one detector on one machine; ``learn_one`` says whether a hit is emitted."""

    __slots__ = ("_clear_after", "_clear_ms", "_hits_needed", "_mask", "_reemit_ms", "hits", "is_open",
                 "last_emit", "last_hit", "opened_at", "quiet")  # fmt: skip

    def __init__(self, config: AnomalyConfig) -> None:
        self._mask = (1 << config.confirm_window) - 1
        self._hits_needed = config.confirm_hits
        self._clear_after = config.clear_after
        self._clear_ms = config.clear_after_s * 1000
        self._reemit_ms = config.reemit_every_s * 1000
        self.hits = 0  # bit i set: the reading i steps ago was a hit (the k-of-n window)
        self.is_open = False
        self.opened_at = 0  # event time (ms) the episode opened
        self.quiet = 0  # readings since the last hit
        self.last_emit = 0  # event time of the last anomaly emitted for this episode
        self.last_hit = 0  # event time of the last hit

    def learn_one(self, hit: bool, t: int) -> bool:
        """Feed one reading (event time ``t``): True when its finding is to be emitted (the hit that
        opens the episode, or a hit one heartbeat after the last emitted one)."""
        self.hits = ((self.hits << 1) | int(hit)) & self._mask
        self.quiet = 0 if hit else self.quiet + 1
        if hit:
            self.last_hit = t
        if self.is_open:
            if self.quiet >= self._clear_after or (self.quiet and t - self.last_hit >= self._clear_ms):
                self.is_open = False
            elif hit and t - self.last_emit >= self._reemit_ms:
                self.last_emit = t
                return True
            return False
        if hit and self.hits.bit_count() >= self._hits_needed:
            self.is_open = True
            self.opened_at = self.last_emit = t
            return True
        return False

    def close(self) -> None:
        """End the episode now (its cause was adopted as normal)."""
        self.is_open = False
        self.hits = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "open": self.is_open,
            "opened_at": self.opened_at,
            "quiet": self.quiet,
            "last_emit": self.last_emit,
            "last_hit": self.last_hit,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], config: AnomalyConfig) -> Episode:
        ep = cls(config)
        ep.hits = integer(d["hits"]) & ep._mask
        ep.is_open = d["open"] is True
        ep.opened_at, ep.quiet, ep.last_emit, ep.last_hit = (
            integer(d["opened_at"]),
            integer(d["quiet"]),
            integer(d["last_emit"]),
            integer(d["last_hit"]),
        )
        return ep
