"""The anomaly processor on synthetic telemetry: it flags obvious faults and stays quiet otherwise."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

import pytest
from fastavro.validation import validate

from processors.anomaly import AnomalyConfig, AnomalyProcessor
from processors.base import Emit, Record, derived_id
from schemas import load_schema
from twin.errors import ConfigError

T0 = 1_764_000_000_000
CONFIG = AnomalyConfig(warmup_s=300, warmup_events=300)
Channels = dict[str, float | None]


def readings(
    n: int, seed: int = 7, machine: str = "pump-1", fault: Callable[[int, Channels], Channels] | None = None
) -> Iterator[Record]:
    """One reading per second of a two-signal machine with gaussian noise; ``fault`` edits values."""
    rng = random.Random(seed)
    for i in range(n):
        values: Channels = {
            "Flow Rate (l/min)": round(30 + rng.gauss(0, 0.5), 2),
            "pressure_in": round(2.5 + rng.gauss(0, 0.05), 3),
        }
        if fault is not None:
            values = fault(i, values)
        yield {
            "event_id": derived_id("reading", machine, i),
            "event_time": T0 + i * 1000,
            "source": "test",
            "correlation_id": derived_id("reading", machine, i),
            "line_id": "water",
            "machine_id": machine,
            "machine_type": "pump",
            "channels": [{"name": k, "value": v, "unit": "u"} for k, v in values.items()],
        }


def run(records: Iterator[Record], processor: AnomalyProcessor | None = None) -> list[Emit]:
    p = processor or AnomalyProcessor(CONFIG)
    return [e for r in records for e in p.process_one(r)]


def first(emits: list[Emit], detector: str) -> int | None:
    times = [(e.record["event_time"] - T0) // 1000 for e in emits if e.record["detector"] == detector]
    return min(times) if times else None


def test_stationary_noise_raises_nothing() -> None:
    for seed in (1, 2, 3):
        assert run(readings(3000, seed=seed)) == []


def test_rising_drift_is_flagged_soon_after_it_starts() -> None:
    def drift(i: int, v: Channels) -> Channels:
        if i >= 1500:
            v["Flow Rate (l/min)"] = (v["Flow Rate (l/min)"] or 0) + 0.02 * (i - 1500)  # +1 noise sd / 25 s
        return v

    emits = run(readings(2100, fault=drift))
    start = min((e.record["event_time"] - T0) // 1000 for e in emits)
    assert 1500 <= start <= 1900  # before the drift reaches 16 noise sd
    assert emits[0].record["contributing"][0]["name"] == "Flow Rate (l/min)"


def test_spike_level_shift_is_flagged_with_the_signal_first() -> None:
    def shift(i: int, v: Channels) -> Channels:
        if 1500 <= i < 1560:
            v["pressure_in"] = (v["pressure_in"] or 0) + 1.0  # 20 sd
        return v

    emits = run(readings(2000, fault=shift))
    assert emits, "a 20-sigma shift must be flagged"
    # The smoothed level view (EWMA over level_span = 120 readings) remembers the shift for a while
    # after it ends; its heartbeat may follow it by up to that span.
    assert all(1500 <= (e.record["event_time"] - T0) // 1000 < 1560 + 120 for e in emits)
    assert emits[0].record["contributing"][0]["name"] == "pressure_in"


def test_stuck_signal_is_flagged_as_stuck() -> None:
    def stuck(i: int, v: Channels) -> Channels:
        if i >= 1500:
            v["Flow Rate (l/min)"] = 30.12
        return v

    emits = run(readings(1700, fault=stuck))
    assert first(emits, "stuck-sensor") is not None
    assert 1500 <= (first(emits, "stuck-sensor") or 0) <= 1530
    stuck_emit = next(e for e in emits if e.record["detector"] == "stuck-sensor")
    assert stuck_emit.record["contributing"][0]["name"] == "Flow Rate (l/min)"


def test_dropped_signal_is_flagged_as_dropped() -> None:
    def dropped(i: int, v: Channels) -> Channels:
        if i >= 1500:
            v["pressure_in"] = None
        return v

    emits = run(readings(1600, fault=dropped))
    # Three missing readings make a gap; 3 of the last 5 readings must be over threshold to confirm.
    assert first(emits, "dropped-sensor") == 1504
    assert {e.record["detector"] for e in emits} == {"dropped-sensor"}


def test_new_and_constant_channels_are_handled() -> None:
    def extra(i: int, v: Channels) -> Channels:
        v["always_zero"] = 0.0  # constant: no NaN, no alarm
        if i >= 1000:
            v["late joiner"] = 5.0 + (i % 7) * 0.01  # appears later, then behaves
        return v

    p = AnomalyProcessor(CONFIG)
    assert run(readings(2500, fault=extra), p) == []
    assert p.machines() == ["pump-1"]


def test_anomaly_record_follows_the_contract() -> None:
    def shift(i: int, v: Channels) -> Channels:
        if i >= 1500:
            v["pressure_in"] = 9.0
        return v

    emits = run(readings(1600, fault=shift))
    e = emits[0]
    r = e.record
    assert e.topic == "twin.anomalies" and e.key == "pump-1"
    assert r["event_id"] == derived_id("anomaly", r["detector"], r["observed_event_id"])
    assert r["correlation_id"] == r["observed_event_id"]
    assert r["source"] == "processor:anomaly" and r["line_id"] == "water"
    assert r["score"] > r["threshold"]
    assert r["contributing"][0]["value"] == 9.0 and r["contributing"][0]["unit"] == "u"
    assert len({x["event_id"] for x in (em.record for em in emits)}) == len(emits)
    assert validate(r, load_schema("anomaly").parsed, raise_errors=True)


def test_episode_emits_a_heartbeat_not_a_flood() -> None:
    def shift(i: int, v: Channels) -> Channels:
        if 1500 <= i < 1800:
            v["pressure_in"] = 9.0
        return v

    emits = run(readings(2000, fault=shift))
    per_detector: dict[str, int] = {}
    for e in emits:
        per_detector[e.record["detector"]] = per_detector.get(e.record["detector"], 0) + 1
    assert all(n <= 300 // 60 + 1 for n in per_detector.values())  # at most one a minute


def test_snapshot_restore_continues_exactly() -> None:
    def faults(i: int, v: Channels) -> Channels:
        if 1500 <= i < 1600:
            v["pressure_in"] = 7.0
        if i >= 1900:
            v["Flow Rate (l/min)"] = None
        return v

    records = list(readings(2200, fault=faults))
    straight = AnomalyProcessor(CONFIG)
    expected = run(iter(records), straight)

    first_half = AnomalyProcessor(CONFIG)
    before = run(iter(records[:1550]), first_half)
    state = first_half.snapshot("pump-1")
    restarted = AnomalyProcessor(CONFIG)
    restarted.restore("pump-1", state)
    after = run(iter(records[1550:]), restarted)
    assert before + after == expected
    assert any(e.record["detector"] == "dropped-sensor" for e in after)


def test_restore_refuses_other_settings() -> None:
    p = AnomalyProcessor(CONFIG)
    run(readings(10), p)
    other = AnomalyProcessor(AnomalyConfig(warmup_s=301, warmup_events=300))
    with pytest.raises(ConfigError, match="other detector settings"):
        other.restore("pump-1", p.snapshot("pump-1"))


def state(machine: str, i: int, to: str, previous: str | None) -> Record:
    return {"event_time": T0 + i * 1000 - 1, "machine_id": machine, "state": to, "previous": previous,
            "reason": "opaque"}  # fmt: skip


def staged(n: int, idle: Callable[[int], bool], level: Callable[[int, bool], float]) -> Iterator[Record]:
    """Telemetry with state events: ``idle(i)`` says the reported state, ``level(i, idle)`` the
    value of a 'pressure' channel (a flow channel keeps a running/idle level)."""
    rng = random.Random(5)
    current: str | None = None
    for i in range(n):
        want = "IDLE" if idle(i) else "RUNNING"
        if want != current:
            yield state("m", i, want, current)
            current = want
        is_idle = want == "IDLE"
        yield {
            "event_id": derived_id("reading", "m", i), "event_time": T0 + i * 1000, "source": "t",
            "correlation_id": derived_id("reading", "m", i), "line_id": "l", "machine_id": "m",
            "machine_type": "x",
            "channels": [
                {"name": "pressure", "value": round(level(i, is_idle) + rng.gauss(0, 0.03), 3), "unit": "bar"},
                {"name": "flow", "value": round((0.0 if is_idle else 0.35) + rng.gauss(0, 0.01), 3),
                 "unit": "l/min"},
            ],
        }  # fmt: skip


def feed(items: Iterator[Record], p: AnomalyProcessor) -> list[Emit]:
    out: list[Emit] = []
    for r in items:
        if "channels" in r:
            out.extend(p.process_one(r))
        else:
            p.observe_state(r)
    return out


def idle_blocks(i: int) -> bool:
    return (i // 400) % 2 == 1  # 400 s running, 400 s idle, ...


def test_level_normal_when_idle_is_flagged_only_when_running() -> None:
    # Pressure sits at 6.3 when idle and 5.8 when running; after 4000 s it reads 6.3 while running.
    def pressure(i: int, is_idle: bool) -> float:
        return 6.3 if is_idle or i >= 4000 else 5.8

    emits = feed(staged(4800, lambda i: idle_blocks(i) and i < 4000, pressure), AnomalyProcessor(CONFIG))
    times = [(e.record["event_time"] - T0) // 1000 for e in emits]
    assert times and min(times) >= 4000, times
    assert any(e.record["contributing"][0]["name"] == "pressure" for e in emits)


def test_without_state_events_it_behaves_as_before() -> None:
    def shift(i: int, v: Channels) -> Channels:
        if i >= 1500:
            v["pressure_in"] = 9.0
        return v

    records = list(readings(1600, fault=shift))
    with_none = run(iter(records))
    assert with_none and with_none[0].record["event_time"] - T0 >= 1500 * 1000
    p = AnomalyProcessor(CONFIG)
    assert p.alarming("pump-1") == []


def test_snapshot_restore_with_state_context() -> None:
    def pressure(i: int, is_idle: bool) -> float:
        return 6.3 if is_idle or i >= 4000 else 5.8

    items = list(staged(4800, lambda i: idle_blocks(i) and i < 4000, pressure))
    expected = feed(iter(items), AnomalyProcessor(CONFIG))
    cut = next(k for k, r in enumerate(items) if "channels" not in r and r["event_time"] > T0 + 2500 * 1000)
    first_part = AnomalyProcessor(CONFIG)
    before = feed(iter(items[: cut + 1]), first_part)  # the state event is inside the snapshot
    restarted = AnomalyProcessor(CONFIG)
    restarted.restore("m", first_part.snapshot("m"))
    assert before + feed(iter(items[cut + 1 :]), restarted) == expected
    assert expected


def lagged(
    n: int, idle: Callable[[int], bool], bump: Callable[[int], float] | None = None
) -> Iterator[Record]:
    """A slow 'temperature' (first-order lag, 200 s time constant) that heats towards 40 while
    running and cools towards 20 while idle, plus a fast 'flow'; ``bump(i)`` is added to the
    temperature (a fault)."""
    rng = random.Random(11)
    current: str | None = None
    temp = 40.0
    for i in range(n):
        want = "IDLE" if idle(i) else "RUNNING"
        if want != current:
            yield state("m", i, want, current)
            current = want
        is_idle = want == "IDLE"
        temp += ((20.0 if is_idle else 40.0) - temp) * (1 - math.exp(-1 / 200))
        value = temp + (bump(i) if bump is not None else 0.0) + rng.gauss(0, 0.05)
        yield {
            "event_id": derived_id("reading", "m", i), "event_time": T0 + i * 1000, "source": "t",
            "correlation_id": derived_id("reading", "m", i), "line_id": "l", "machine_id": "m",
            "machine_type": "x",
            "channels": [
                {"name": "temperature", "value": round(value, 2), "unit": "degC"},
                {"name": "flow", "value": round((0.0 if is_idle else 0.35) + rng.gauss(0, 0.01), 3),
                 "unit": "l/min"},
            ],
        }  # fmt: skip


def short_idles_then_a_long_break(i: int) -> bool:
    """400 s running and 100 s idle (the idle baseline only ever sees the start of a cool-down),
    then from 3000 s a 1200 s break, then running again."""
    if i < 3000:
        return i % 500 >= 400
    return i < 4200


def test_slow_signal_relaxing_after_a_transition_does_not_alarm() -> None:
    # During the long break the temperature cools from ~40 towards 20 with a 200 s lag, far below
    # anything the short idles showed: it keeps relaxing the way it learned to, so no alarm.
    emits = feed(lagged(5000, short_idles_then_a_long_break), AnomalyProcessor(CONFIG))
    assert emits == [], [((e.record["event_time"] - T0) // 1000, e.record["detector"]) for e in emits]
    # Without the settling allowance the same break is flagged: the model is what keeps it quiet.
    no_lag = AnomalyProcessor(CONFIG.model_copy(update={"relax_margin": 0.0}))
    assert any(
        e.record["detector"] == "multivariate-regime"
        for e in feed(lagged(5000, short_idles_then_a_long_break), no_lag)
    )


def test_rise_against_the_relaxation_direction_alarms() -> None:
    # Half-way through the break the temperature climbs 6 degC in 60 s while it should be cooling.
    def heat(i: int) -> float:
        return 0.0 if i < 3600 else min(6.0, (i - 3600) * 0.1)

    emits = feed(lagged(4200, short_idles_then_a_long_break, heat), AnomalyProcessor(CONFIG))
    times = [(e.record["event_time"] - T0) // 1000 for e in emits]
    assert times and 3600 <= min(times) <= 3720, times
    assert emits[0].record["contributing"][0]["name"] == "temperature"
