"""`twin schedule serve` against the real broker and registry: one plan per request with the
request's correlation id, invalid requests in the DLQ with their reason, replays answered once."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from pipelines.scheduler import SchedulerService
from processors.scheduling.decide import DecisionConfig, plan_id
from producers.records import Outgoing
from tests.integration.processors.pipeline_helpers import namespace, publish
from tests.unit.processors.scheduling.test_sched_core import request
from twin.clients import kafka_consumer, kafka_producer
from twin.dlq import ERROR_MESSAGE, ERROR_REASON, headers_dict
from twin.settings import Settings
from twin.topics import SCHEDULE_PLANS, SCHEDULE_REQUESTS


def _dlq(settings: Settings, topic: str) -> list[dict[str, str]]:
    consumer: Consumer = kafka_consumer(settings, f"test.dlq.{uuid.uuid4().hex[:8]}")
    out: list[dict[str, str]] = []
    ends = {}
    for p in consumer.list_topics(topic, timeout=30).topics[topic].partitions:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        if high:
            ends[p] = high
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    while ends:
        msg = consumer.poll(5)
        assert msg is not None, f"DLQ not read to its end: {ends}"
        out.append(headers_dict(msg.headers()))
        if (msg.offset() or 0) + 1 >= ends[msg.partition() or 0]:
            ends.pop(msg.partition() or 0)
    consumer.close()
    return out


def _req(n: int, **changes: Any) -> dict[str, Any]:
    rid = str(uuid.UUID(int=n))
    return request(event_id=rid, request_id=rid, correlation_id=f"cause-{n}", **changes)


def test_requests_are_answered_once_and_bad_ones_go_to_the_dlq(settings: Settings, tmp_path: Path) -> None:
    with namespace(settings, tmp_path) as ns:
        scoped = settings.model_copy(deep=True)
        scoped.scheduler.topic_prefix = ns.prefix
        good = _req(1)
        unknown = _req(
            2, machines=[{"machine_id": "pack", "available": True, "available_from": None, "family": None}]
        )
        cycle = _req(3)
        cycle["jobs"][0]["operations"][0]["after"] = ["p1/pack"]
        records = [Outgoing(SCHEDULE_REQUESTS, "line-1", r) for r in (good, unknown, cycle, good)]
        publish(settings, ns.prefix, records)
        producer = kafka_producer(settings)
        producer.produce(ns.name(SCHEDULE_REQUESTS), b"\x00garbage", b"line-1")
        assert producer.flush(30) == 0

        config = DecisionConfig(solvers=("cpsat", "edd", "fifo"), deadline_s=3)
        seen: list[dict[str, Any]] = []
        service = SchedulerService(
            scoped, config, group_id=f"{ns.app_id}-a", on_plan=lambda r, d: seen.append(r)
        )
        stats = service.run(threading.Event(), max_requests=5)
        assert (stats.planned, stats.duplicates, stats.dead_lettered) == (1, 1, 3)

        plans = ns.outputs(SCHEDULE_PLANS)[SCHEDULE_PLANS]
        assert len(plans) == 1
        (plan,) = plans
        assert plan["plan_id"] == plan_id(good["request_id"]) and plan["correlation_id"] == "cause-1"
        assert plan["solver"] == "cpsat" and plan["objective"] == 110.0 and plan["status"] == "OPTIMAL"
        assert [c["solver"] for c in plan["comparison"]] == ["cpsat", "edd", "fifo"]
        assert plan["_key"] == "line-1"

        letters = _dlq(settings, ns.name(SCHEDULE_REQUESTS) + ".dlq")
        reasons = sorted(h[ERROR_REASON] for h in letters)
        assert reasons == ["invalid-request", "invalid-request", "schema"]
        messages = " | ".join(h[ERROR_MESSAGE] for h in letters)
        assert "unknown machine 'bend'" in messages and "precedences form a cycle" in messages

        # A new consumer group reads every request again (a replay): no second plan.
        again = SchedulerService(scoped, config, group_id=f"{ns.app_id}-b")
        stats = again.run(threading.Event(), max_requests=5)
        assert stats.planned == 0 and stats.duplicates == 2
        assert len(ns.outputs(SCHEDULE_PLANS)[SCHEDULE_PLANS]) == 1
