"""LINE-scope KPI windows: hand-computed line OEE, the no-layout fallback, emission, lateness, snapshots."""

from __future__ import annotations

from collections import Counter

import pytest

from processors.base import Emit, Record, derived_id
from processors.kpi import Figures, KpiConfig, LineKpis, MachineKpis
from producers.records import EventMapper
from sim import Simulator, load_factory
from sim.events import TelemetryEvent
from tests.unit.processors.fleet import Fleet
from twin.errors import KpiError, SnapshotError

T0 = 1_764_000_000_000
HOUR = 3_600_000
LAYOUT = ["a", "b", "c"]
CONFIG = KpiConfig(window_sizes_s=(3600,), allowed_lateness_s=60)


def machine_window(
    machine: str,
    start: int = T0,
    *,
    planned_s: float = 3300,
    run_s: float = 3300,
    total: int = 0,
    good: int = 0,
    ideal: float = 30.0,
    mean_cycle: float | None = None,
    failures: int = 0,
    mttr: float | None = None,
    late: int = 0,
    size_ms: int = HOUR,
) -> Record:
    """A MACHINE-scope record as MachineKpis emits it."""
    from processors.kpi.record import kpi_emit

    figures = Figures(
        round(planned_s * 1000), round(run_s * 1000), total, good, ideal, mean_cycle, failures, mttr, late
    )
    return kpi_emit("MACHINE", machine, "line-1", size_ms, start, figures).record


def hour_of_three(start: int = T0) -> dict[str, Record]:
    return {
        "a": machine_window(
            "a", start, planned_s=3300, run_s=3300, total=100, good=98, ideal=30, failures=1, mttr=300
        ),
        "b": machine_window(
            "b", start, planned_s=3300, run_s=3000, total=64, good=63, ideal=45, mean_cycle=46.0
        ),
        "c": machine_window(
            "c", start, planned_s=3300, run_s=3250, total=62, good=60, ideal=20, failures=1, mttr=100
        ),
    }


def feed(kpis: LineKpis, records: list[Record]) -> list[Record]:
    out: list[Emit] = []
    for r in records:
        out += kpis.process_one("twin.kpis", r)
    assert all(e.topic == "twin.kpis" and e.key == "line-1" for e in out)
    return [e.record for e in out]


def test_hand_computed_line_oee_with_layout_is_emitted_when_every_machine_reported() -> None:
    kpis = LineKpis("line-1", CONFIG, LAYOUT)
    windows = hour_of_three()
    assert feed(kpis, [windows["a"], windows["b"]]) == []
    (w,) = feed(kpis, [windows["c"]])  # complete: no need to wait for the watermark
    # Exit c: 60 good. Scrap anywhere: a 2 + b 1 + c 2 = 5, so 65 parts left the line.
    assert (w["good_count"], w["total_count"]) == (60, 65)
    # Constraint b (longest ideal cycle, 45 s): its planned 3300 s and run 3000 s.
    assert (w["planned_time_s"], w["run_time_s"], w["ideal_cycle_time_s"]) == (3300.0, 3000.0, 45.0)
    assert w["availability"] == pytest.approx(3000 / 3300)  # 0.909
    assert w["performance"] == pytest.approx(45 * 65 / 3000)  # 0.975
    assert w["quality"] == pytest.approx(60 / 65)
    assert w["oee"] == pytest.approx(45 * 60 / 3300)  # good x ideal / planned = 0.818
    assert w["throughput_per_hour"] == pytest.approx(60.0)
    assert w["mean_cycle_time_s"] == 46.0  # the constraint's
    assert w["scrap_rate"] == pytest.approx(5 / 65)
    assert (w["failures"], w["mtbf_s"], w["mttr_s"]) == (2, 1500.0, pytest.approx((300 + 100) / 2))
    assert (w["scope"], w["scope_id"], w["line_id"], w["window_size_s"]) == ("LINE", "line-1", "line-1", 3600)
    expected_id = derived_id("kpi", "LINE", "line-1", 3600, T0)
    assert w["event_id"] == expected_id == w["correlation_id"] and w["event_time"] == T0 + HOUR


def test_without_layout_the_line_is_measured_at_its_constraint() -> None:
    kpis = LineKpis("line-1", CONFIG)
    windows = hour_of_three()
    # No layout and no previous window: wait for every machine's watermark to pass end + lateness.
    assert feed(kpis, list(windows.values())) == []
    out = kpis.advance(T0 + HOUR + 60_000)
    (w,) = [e.record for e in out]
    # Constraint b: its counts. OEE = 45 s x 63 good / 3300 s planned.
    assert (w["total_count"], w["good_count"]) == (64, 63)
    assert w["performance"] == pytest.approx(45 * 64 / 3000)
    assert w["quality"] == pytest.approx(63 / 64)
    assert w["oee"] == pytest.approx(45 * 63 / 3300)
    assert w["failures"] == 2
    # The next hour is complete as soon as the machines of the last one reported it.
    nxt = hour_of_three(T0 + HOUR)
    assert feed(kpis, [nxt["a"], nxt["c"]]) == []
    assert len(feed(kpis, [nxt["b"]])) == 1


def test_missing_exit_falls_back_to_the_constraint() -> None:
    kpis = LineKpis("line-1", CONFIG, LAYOUT)
    windows = hour_of_three()
    feed(kpis, [windows["a"], windows["b"]])
    (w,) = [e.record for e in kpis.advance(T0 + HOUR + 60_000)]
    assert (w["total_count"], w["good_count"], w["failures"]) == (64, 63, 1)


def test_the_slowest_machine_holds_the_line_watermark() -> None:
    kpis = LineKpis("line-1", CONFIG, LAYOUT)
    first = hour_of_three()
    feed(kpis, [first["a"], first["b"]])
    # a and b are two hours further; c has not reported its first hour yet: nothing may close.
    later = [machine_window(m, T0 + k * HOUR) for k in (1, 2) for m in ("a", "b")]
    assert feed(kpis, later) == []
    out = feed(kpis, [first["c"]])
    assert [r["window_start"] for r in out] == [T0]
    assert out[0]["total_count"] == 65


def test_late_machine_window_is_counted_in_the_next_line_window() -> None:
    kpis = LineKpis("line-1", CONFIG, LAYOUT)
    first = hour_of_three()
    feed(kpis, [first["a"], first["b"]])
    kpis.advance(T0 + HOUR + 60_000)  # closes hour 0 without c
    second = hour_of_three(T0 + HOUR)
    second["a"]["late_events"] = 2  # the machine's own late events add up too
    assert feed(kpis, [first["c"], second["a"], second["b"]]) == []
    (w,) = feed(kpis, [second["c"]])
    assert w["late_events"] == 1 + 2
    assert w["total_count"] == 65  # the late window is in no figures


def test_arrival_order_of_machine_windows_does_not_change_figures() -> None:
    windows = list(hour_of_three().values())
    results = []
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        results.append(feed(LineKpis("line-1", CONFIG, LAYOUT), [windows[i] for i in order]))
    assert results[0] == results[1] == results[2] and len(results[0]) == 1


def test_sizes_are_independent_windows() -> None:
    kpis = LineKpis("line-1", KpiConfig(window_sizes_s=(60, 3600), allowed_lateness_s=0), ["a"])
    out = feed(kpis, [machine_window("a", T0, size_ms=60_000), machine_window("a", T0)])
    assert [(r["window_size_s"], r["window_start"]) for r in out] == [(60, T0), (3600, T0)]


def test_bad_input_raises_kpi_error_and_line_windows_are_not_inputs() -> None:
    kpis = LineKpis("line-1", CONFIG, LAYOUT)
    before = kpis.snapshot()
    assert kpis.process_one("twin.kpis", dict(machine_window("a"), scope="LINE")) == []
    assert kpis.snapshot() == before  # its own output fed back changes nothing
    with pytest.raises(KpiError, match="window_start"):
        kpis.process_one("twin.kpis", dict(machine_window("a"), window_start=None))
    with pytest.raises(SnapshotError, match="line-kpis"):
        kpis.restore(b'{"format": 1, "kind": "machine-kpis"}')  # a machine's, not a line's


def test_snapshot_restore_gives_identical_outputs() -> None:
    records = [r for k in range(4) for r in hour_of_three(T0 + k * HOUR).values()]
    records.insert(7, machine_window("a", T0 - HOUR))  # far too late: pending late count in the snapshot
    for layout in (LAYOUT, None):
        original = LineKpis("line-1", CONFIG, layout)
        feed(original, records[:5])
        original.advance(T0 + HOUR + 30_000)
        restored = LineKpis("line-1", CONFIG, layout)
        restored.restore(original.snapshot())
        assert restored.snapshot() == original.snapshot()
        rest = records[5:]
        assert feed(restored, rest) == feed(original, rest)
        assert restored.advance(T0 + 9 * HOUR) == original.advance(T0 + 9 * HOUR)


def test_simulated_line_output_is_the_last_station_good_parts() -> None:
    sim = Simulator(load_factory(), seed=5, start_time_ms=T0)
    end = T0 + 3 * HOUR
    mapper = EventMapper(5)
    machines = Fleet(MachineKpis)
    machine_windows: list[Record] = []
    good_out = Counter[int]()
    for event in sim.run(end - 1):
        if isinstance(event, TelemetryEvent):
            continue
        o = mapper.map(event)
        if o.topic == "factory.production" and o.record["machine_id"] == "qc-1" and o.record["good"]:
            good_out[(event.time_ms - T0) // HOUR] += 1
        machine_windows += [e.record for e in machines.process_one(o.topic, o.record)]
    machine_windows += [e.record for e in machines.advance(end + 120_000)]
    layout = [s.id for s in sim.factory.lines[0].stations]
    lines = LineKpis("line-1", stations=layout)
    out = [e.record for r in machine_windows for e in lines.process_one("twin.kpis", r)]
    out += [e.record for e in lines.advance(end + 120_000)]
    hours = sorted((r for r in out if r["window_size_s"] == 3600), key=lambda r: r["window_start"])
    assert [r["good_count"] for r in hours] == [good_out[h] for h in range(3)]
    assert all(r["late_events"] == 0 for r in out)
    assert len([r for r in out if r["window_size_s"] == 60]) == 180
    for r in hours:
        assert r["ideal_cycle_time_s"] == 45.0  # weld-1, the designed bottleneck
        assert 0.6 < r["oee"] <= 1.0 and 0.0 <= r["availability"] <= 1.0
