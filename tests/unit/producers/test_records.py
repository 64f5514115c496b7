from __future__ import annotations

import io
from pathlib import Path

import fastavro
import pytest

from producers.pacing import Pacer
from producers.records import EventMapper
from schemas import load_schema
from sim.events import ChannelReading, PartProducedEvent, SimEvent, StateChangeEvent, TelemetryEvent

EVENTS: list[SimEvent] = [
    TelemetryEvent(1_000, "line-1", "cnc-1", "cnc", (ChannelReading("vibration_rms", 1.2, "mm/s"), ChannelReading("t", None, "degC"))),
    PartProducedEvent(2_000, "line-1", "cnc-1", "line-1-00000001", 31.5, 30.0, False, "dimension out of tolerance"),
    StateChangeEvent(3_000, "line-1", "press-1", "RUNNING", "DOWN", "jam"),
]  # fmt: skip


def test_events_map_to_valid_records_on_their_topics() -> None:
    mapper = EventMapper(seed=1)
    mapped = [mapper.map(e) for e in EVENTS]
    assert [m.topic for m in mapped] == ["factory.telemetry", "factory.production", "factory.state"]
    assert [m.key for m in mapped] == ["cnc-1", "cnc-1", "press-1"]
    for m, schema in zip(mapped, ["telemetry", "part_produced", "machine_state"], strict=True):
        parsed = load_schema(schema).parsed
        assert fastavro.validation.validate(m.record, parsed, raise_errors=True)
        fastavro.schemaless_writer(io.BytesIO(), parsed, m.record)
    assert mapped[0].record["channels"][1] == {"name": "t", "value": None, "unit": "degC"}
    assert mapped[1].record["good"] is False
    assert mapped[2].record["previous"] == "RUNNING" and mapped[2].record["state"] == "DOWN"


def test_event_ids_are_deterministic_by_seed_and_unique() -> None:
    def ids(seed: int) -> list[str]:
        mapper = EventMapper(seed=seed)
        return [mapper.map(e).event_id for e in EVENTS]

    a, b, c = ids(7), ids(7), ids(8)
    assert a == b and a != c and len(set(a)) == 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_holds_to_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=200, speed=None, clock=clock, sleep=clock.sleep)
    for i in range(41):
        pacer.wait(i)
    assert clock.now - 100.0 == pytest.approx(40 / 200)  # 40 intervals at 200 events/s


def test_pacer_follows_source_time_at_speed_and_the_stricter_limit_wins() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=None, speed=10, clock=clock, sleep=clock.sleep)
    pacer.wait(0)
    pacer.wait(2_000)  # two source seconds at 10x: 0.2 wall seconds
    assert clock.now - 100.0 == pytest.approx(0.2)
    both = Pacer(rate=1, speed=10, clock=clock, sleep=clock.sleep)
    start = clock.now
    both.wait(0)
    both.wait(100)  # speed would allow 0.01 s, the rate only 1 s
    assert clock.now - start == pytest.approx(1.0)


def test_unlimited_pacer_never_sleeps() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=None, speed=None, clock=clock, sleep=clock.sleep)
    for i in range(1000):
        pacer.wait(i * 1_000_000)
    assert clock.now == 100.0


def test_the_run_log_places_each_sped_up_run_where_no_earlier_one_is(tmp_path: Path) -> None:
    """Two demos a minute apart would cover the same stretch of the past: the second goes before
    the first; a retry takes its logged stretch; another line, or a live run, is not moved."""
    from producers.runs import RunId, RunLog

    log = RunLog(tmp_path / "runs.jsonl")
    t = 1_796_661_612_345
    first = RunId(t)
    assert log.start_of(first, ["line-1"], duration_s=20, speed=120) == t - 20 * 119 * 1000
    second = RunId(t + 60_000)
    start = log.start_of(second, ["line-1"], duration_s=20, speed=120)
    assert start == (t - 20 * 119 * 1000) - 20 * 120 * 1000  # ends where the first began
    assert log.start_of(first, ["line-1"], duration_s=20, speed=120) == t - 20 * 119 * 1000  # a retry
    assert (
        log.start_of(RunId(t + 61_000), ["line-2"], duration_s=20, speed=120) == t + 61_000 - 20 * 119 * 1000
    )
    assert log.start_of(RunId(t + 90_000), ["line-1"], duration_s=None, speed=1) == t + 90_000
    assert len(log.stretches()) == 3
    (tmp_path / "runs.jsonl").write_text((tmp_path / "runs.jsonl").read_text() + '{"run_id": "torn')
    assert len(log.stretches()) == 3  # a torn last line is skipped
