"""Kafka offsets the demo reads and commits: where topics end, where a consumer group stands."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from twin.errors import InfraError

if TYPE_CHECKING:
    from cli.demo.children import Child
    from twin.settings import Settings

Offsets = dict[tuple[str, int], int]  # (topic, partition) -> offset
T = TypeVar("T")


def end_offsets(settings: Settings, topics: Iterable[str]) -> Offsets:
    """High watermark of every partition of ``topics``."""
    from confluent_kafka import TopicPartition

    from twin.clients import kafka_consumer

    consumer = kafka_consumer(settings, group_id="twin-demo-offsets")
    try:
        metadata = consumer.list_topics(timeout=10)
        offsets: Offsets = {}
        for t in topics:
            for p in metadata.topics[t].partitions:
                offsets[(t, p)] = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
        return offsets
    finally:
        consumer.close()


def retry_coordinator(call: Callable[[], T]) -> T:
    """``call()``, retried while a fresh broker loads its group coordinator."""
    from confluent_kafka import KafkaException

    for _ in range(59):
        try:
            return call()
        except KafkaException:
            time.sleep(0.5)
    return call()


def start_at(settings: Settings, group: str, offsets: Offsets, *, unless_committed: bool = False) -> None:
    """Commit ``offsets`` for ``group`` (where its consumers will start); with ``unless_committed``,
    only for the partitions the group has never committed, so it keeps its place where it has one
    (and a topic added since, e.g. by an upgrade, starts at ``offsets`` like a new group would)."""
    from confluent_kafka import TopicPartition

    from twin.clients import kafka_consumer

    consumer = kafka_consumer(settings, group_id=group)
    try:
        if unless_committed:
            asked = [TopicPartition(t, p) for t, p in offsets]
            committed = retry_coordinator(lambda: consumer.committed(asked, timeout=10))
            placed = {(tp.topic, tp.partition) for tp in committed if tp.offset >= 0}
            offsets = {tp: off for tp, off in offsets.items() if tp not in placed}
            if not offsets:
                return
        at = [TopicPartition(t, p, off) for (t, p), off in offsets.items()]
        retry_coordinator(lambda: consumer.commit(offsets=at, asynchronous=False))
    finally:
        consumer.close()


def wait_committed(settings: Settings, group: str, ends: Offsets, child: Child, limit_s: float) -> None:
    """Until ``group`` has committed ``ends`` (``child``, its consumer, has done everything up to
    there); an InfraError if the child exits or does not get there within ``limit_s``."""
    from confluent_kafka import KafkaException, TopicPartition

    from twin.clients import kafka_consumer

    asked = [TopicPartition(t, p) for t, p in ends]
    if not asked:
        return
    consumer = kafka_consumer(settings, group_id=group)
    try:
        deadline = time.monotonic() + limit_s
        while True:
            child.check()
            try:
                committed = consumer.committed(asked, timeout=10)
            except KafkaException:  # the group coordinator is still loading: ask again
                committed = []
            if committed and all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in committed):
                return
            if time.monotonic() > deadline:
                msg = f"{child.label} did not catch up within {limit_s:g}s; see {child.log}"
                raise InfraError(msg)
            time.sleep(0.5)
    finally:
        consumer.close()


def wait_joined(settings: Settings, group: str, child: Child, limit_s: float) -> bool:
    """Until ``group`` is Stable with a member that holds partitions (``child``, its consumer, is
    ready to take input); False, not an error, when that takes longer than ``limit_s``."""
    from confluent_kafka import ConsumerGroupState, KafkaException

    from twin.clients import kafka_admin

    admin = kafka_admin(settings)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        child.check()
        try:
            description = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
        except KafkaException:  # not known yet, or the coordinator is loading
            description = None
        if (
            description is not None
            and description.state == ConsumerGroupState.STABLE
            and any(m.assignment and m.assignment.topic_partitions for m in description.members)
        ):
            return True
        time.sleep(0.5)
    return False
