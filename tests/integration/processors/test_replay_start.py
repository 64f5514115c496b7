"""``twin process --from``: where a worker group starts, on the real broker."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from localstack import Infra
from pipelines.replay import plan_start
from producers.records import Outgoing
from tests.integration.processors.pipeline_helpers import namespace
from tests.integration.producers.helpers import twin
from twin.settings import Settings

pytestmark = [pytest.mark.integration]
T0 = 1_764_000_000_000


def reading(i: int) -> Outgoing:
    return Outgoing("factory.telemetry", "pump-1", {
        "event_id": str(uuid.uuid4()), "event_time": T0 + i * 60_000, "source": "t", "correlation_id": "c",
        "line_id": "water", "machine_id": "pump-1", "machine_type": "pump", "channels": [],
    })  # fmt: skip


def test_a_group_starts_where_it_is_told_and_says_so(
    stack: Infra, settings: Settings, tmp_path: Path
) -> None:
    with namespace(settings, tmp_path) as ns:
        ns.publish([reading(i) for i in range(7)])
        time.sleep(1.5)
        between = int(time.time() * 1000)
        time.sleep(0.5)
        ns.publish([reading(i) for i in range(7, 10)])
        topics = [ns.name("factory.telemetry")]
        fresh = plan_start(settings, ns.app_id, topics, None)
        assert not fresh.resumed and fresh.backlog == 10
        assert "no committed offsets: replaying its topics from the start, 10 messages" in fresh.describe(
            ns.app_id, None
        )
        at = plan_start(settings, ns.app_id, topics, "<time>", between)
        assert at.backlog == 3  # what the broker received after that time
        resumed = plan_start(settings, ns.app_id, topics, None)
        assert resumed.resumed and resumed.backlog == 3  # the choice was committed for the group
        assert plan_start(settings, ns.app_id, topics, "latest").backlog == 0
        assert plan_start(settings, ns.app_id, topics, "earliest").backlog == 10


def test_a_bad_from_is_one_line(stack: Infra) -> None:
    out = twin("process", "--from", "yesterday-ish", "--metrics-port", "0", "--no-create-topics")
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "--from 'yesterday-ish'" in out.stderr, out.stderr
