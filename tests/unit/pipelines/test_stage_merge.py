"""The machine stage's event-time merge of one partition's telemetry, production and state.

Real simulator records run through the real processors; only the wire format is JSON here (the
Avro codec and its registry are covered by the integration tests), so the merge is tested alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipelines.stage import IdleClock, Inbound, MachineStage
from processors.stages import TwinConfig
from producers.session import simulator_records
from sim import Simulator, load_factory

T0 = 1_764_000_000_000
TELEMETRY, PRODUCTION, STATE = "factory.telemetry", "factory.production", "factory.state"


class JsonCodec:
    def decode(self, value: bytes | None) -> Any:
        return json.loads(value or b"null")

    def encode(self, record: Any) -> bytes:
        return json.dumps(record).encode()


def make_stage() -> MachineStage:
    return MachineStage(TwinConfig(), lambda _topic: JsonCodec(), "line-events")


def inputs(minutes: int, machine: str = "press-1", partition: int = 0) -> dict[str, list[Inbound]]:
    """One machine's telemetry, production and state for ``minutes`` of simulated time (seed 5:
    press-1 changes state 66 times in 30 minutes), each topic in its own offset order."""
    sim = Simulator(load_factory(), seed=5, start_time_ms=T0)
    out: dict[str, list[Inbound]] = {TELEMETRY: [], PRODUCTION: [], STATE: []}
    for o in simulator_records(sim, 5, T0, T0 + minutes * 60_000):
        if o.key != machine or o.topic not in out:
            continue
        topic = out[o.topic]
        topic.append(Inbound(o.topic, partition, len(topic), machine.encode(), json.dumps(o.record).encode()))
    assert all(out.values()), "the scenario needs all three topics"
    return out


def event_times(msgs: list[Inbound]) -> list[int]:
    return [int(json.loads(m.value or b"{}")["event_time"]) for m in msgs]


def never(_topic: str, _partition: int) -> bool:
    return False


def always(_topic: str, _partition: int) -> bool:
    return True


def test_idle_clock_counts_only_waits() -> None:
    clock = IdleClock()
    assert clock.resume(10.0) == 0.0  # input without a wait: no idle time
    clock.wait(12.0)
    assert clock.read(13.5) == pytest.approx(1.5)  # a wait in progress counts
    clock.wait(13.0)  # a second wait call does not restart the wait
    assert clock.resume(15.0) == pytest.approx(3.0)
    assert clock.read(100.0) == pytest.approx(3.0)  # busy since: the clock stands still


def test_merge_releases_in_event_time_order_whatever_the_arrival() -> None:
    msgs = inputs(30)
    stage = make_stage()
    now = 0.0
    # A catch-up hands over every state change and production count before any telemetry.
    for topic in (STATE, PRODUCTION, TELEMETRY):
        for m in msgs[topic]:
            now += 0.001
            stage.offer(m, now)
            stage.release(never, now)
    stage.release(always, now)
    assert stage.queued == 0
    times = event_times(stage.released)
    assert len(times) == sum(len(v) for v in msgs.values())
    assert times == sorted(times)


def test_a_busy_worker_keeps_holding_a_lagging_topic() -> None:
    """Work on other partitions for far longer than the hold: the state must wait for telemetry."""
    msgs = inputs(30)
    stage = make_stage()
    now = 0.0
    for m in msgs[STATE]:
        stage.offer(m, now)
    # 60 s of wall time busy with partition 1 (other machines), never waiting for input.
    other = inputs(30, machine="qc-1", partition=1)[TELEMETRY]
    for i, m in enumerate(other):
        now = 60.0 * (i + 1) / len(other)
        stage.offer(m, now)
        stage.release(lambda _t, p: p == 1, now, {1})
    assert now > 10 * stage.max_hold_s
    stage.release(never, now)
    assert stage.queued == len(msgs[STATE])  # nothing of partition 0 released early
    for topic in (PRODUCTION, TELEMETRY):
        for m in msgs[topic]:
            stage.offer(m, now)
    stage.release(always, now)
    mine = [m for m in stage.released if m.partition == 0]
    assert event_times(mine) == sorted(event_times(mine))


def test_a_silent_topic_stops_holding_after_max_hold_s_of_waiting() -> None:
    msgs = inputs(30)
    stage = make_stage()
    stage.offer(msgs[STATE][0], 100.0)
    stage.offer(msgs[PRODUCTION][0], 100.0)
    stage.idle(100.0)
    assert stage.release(never, 100.0 + stage.max_hold_s - 0.1) == [] and stage.queued == 2
    stage.release(never, 100.0 + stage.max_hold_s + 0.1)
    assert stage.queued == 0
    assert event_times(stage.released) == sorted(event_times(stage.released))


def test_a_caught_up_topic_does_not_hold() -> None:
    msgs = inputs(30)
    stage = make_stage()
    stage.offer(msgs[STATE][0], 0.0)
    stage.release(lambda topic, _p: not topic.endswith(PRODUCTION), 0.0)
    assert stage.queued == 1  # production not read to its end: hold
    stage.release(always, 0.0)
    assert stage.queued == 0


def test_an_input_from_the_future_goes_to_the_dlq_and_leaves_the_watermark_alone() -> None:
    """A device whose clock runs 2 h ahead: its records are dead-lettered (reason clock-skew), the
    partition's watermark stays where the honest machines put it, so their windows go on."""
    msgs = inputs(10)
    stage = make_stage()
    stage.wall = lambda: (T0 + 10 * 60_000) / 1000  # the wall clock: the end of the honest data
    future = json.loads(msgs[TELEMETRY][0].value or b"{}")
    future.update(event_time=T0 + 2 * 3_600_000, machine_id="rogue-1")
    rogue = Inbound(TELEMETRY, 0, 10_000, b"rogue-1", json.dumps(future).encode())
    out = stage.offer(rogue, 0.0)
    assert [o.topic for o in out] == ["factory.telemetry.dlq"]
    headers = dict(out[0].headers or [])
    assert headers["twin.dlq.error.reason"] == b"clock-skew"
    assert b"1 h 50 min ahead" in (headers["twin.dlq.error.message"] or b"")
    assert stage.stats["clock_skew"] == 1 and rogue in stage.released
    assert 0 not in stage.watermarks and "rogue-1" not in stage.slots
    for topic in (STATE, PRODUCTION, TELEMETRY):
        for m in msgs[topic]:
            stage.offer(m, 1.0)
    stage.release(always, 1.0)
    assert stage.watermarks[0] <= T0 + 10 * 60_000
    assert stage.stats["clock_skew"] == 1  # the honest records are within the allowed skew


def test_the_allowed_skew_is_configurable() -> None:
    stage = MachineStage(TwinConfig(max_clock_skew_s=3 * 3600), lambda _topic: JsonCodec(), "line-events")
    stage.wall = lambda: T0 / 1000
    record = json.loads(inputs(1)[TELEMETRY][0].value or b"{}")
    record["event_time"] = T0 + 2 * 3_600_000
    out = stage.offer(Inbound(TELEMETRY, 0, 0, b"press-1", json.dumps(record).encode()), 0.0)
    assert out == [] and stage.stats["clock_skew"] == 0
