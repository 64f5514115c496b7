"""Where a worker group starts reading: its committed offsets, or a place chosen with ``--from``.

``twin process`` says what it is about to replay before it starts: a group with committed offsets
resumes (so many messages behind); a new group reads from the start of its topics unless told
``--from latest`` or ``--from <time>``. Choosing a start commits it for the group, before the
worker joins, so every worker of the group starts there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from twin.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from twin.settings import Settings

Offsets = dict[tuple[str, int], int]  # (topic, partition) -> offset


@dataclass(frozen=True, slots=True)
class Start:
    """Where a group starts and how much that is to read."""

    offsets: Offsets  # the first offset to read, per partition
    ends: Offsets  # where each partition ends now
    resumed: bool  # from the group's committed offsets (else: to be committed)

    @property
    def backlog(self) -> int:
        return sum(max(0, self.ends[tp] - off) for tp, off in self.offsets.items())

    def describe(self, group: str, where: str | None) -> str:
        """One line for the operator: what the worker is about to read."""
        n = f"{self.backlog:,} message{'s' if self.backlog != 1 else ''}"
        if self.resumed:
            return f"group {group} resumes from its committed offsets: {n} to catch up on"
        if where is None:
            return (
                f"group {group} has no committed offsets: replaying its topics from the start, {n} "
                "(--from latest starts at their end, --from <time> at a time)"
            )
        if where == "latest":
            return f"group {group} starts at the end of its topics: only new messages"
        place = "at the start of its topics" if where == "earliest" else f"at {where}"
        return f"group {group} starts {place}: {n}"


def plan_start(
    settings: Settings, group: str, topics: Sequence[str], where: str | None, at_ms: int | None = None
) -> Start:
    """The group's start: ``where`` None resumes from committed offsets (or the start, for a new
    group); ``earliest``, ``latest``, or a time (``at_ms``) is committed for the group first."""
    from confluent_kafka import KafkaException, TopicPartition

    from twin.clients import kafka_consumer

    consumer = kafka_consumer(settings, group_id=group)
    try:
        metadata = consumer.list_topics(timeout=10)
        tps = [TopicPartition(t, p) for t in topics for p in sorted(metadata.topics[t].partitions)]
        lows: Offsets = {}
        ends: Offsets = {}
        for tp in tps:
            lows[(tp.topic, tp.partition)], ends[(tp.topic, tp.partition)] = consumer.get_watermark_offsets(
                tp, timeout=10
            )
        if where is None:
            committed = consumer.committed(tps, timeout=30)
            if any(c.offset >= 0 for c in committed):
                at = {
                    (c.topic, c.partition): c.offset if c.offset >= 0 else lows[(c.topic, c.partition)]
                    for c in committed
                }
                return Start(at, ends, resumed=True)
            return Start(lows, ends, resumed=False)
        if where == "earliest":
            offsets = lows
        elif where == "latest":
            offsets = dict(ends)
        else:
            if at_ms is None:
                msg = f"--from {where}: no time given"
                raise ConfigError(msg)
            found = consumer.offsets_for_times(
                [TopicPartition(t.topic, t.partition, at_ms) for t in tps], timeout=30
            )
            offsets = {
                (f.topic, f.partition): f.offset if f.offset >= 0 else ends[(f.topic, f.partition)]
                for f in found
            }
        try:
            consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
            )
        except KafkaException as exc:
            msg = (
                f"cannot move group {group} to --from {where}: {exc.args[0].str()} "
                "(are workers of this group still running? stop them first)"
            )
            raise ConfigError(msg) from None
        return Start(offsets, ends, resumed=False)
    finally:
        consumer.close()
