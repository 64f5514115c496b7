"""simulator → producers → `twin process` workers → output topics, on the real broker and registry."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import Producer

from localstack import Infra
from processors.base import derived_id
from producers.records import Outgoing
from tests.integration.processors.pipeline_helpers import (
    START_MS,
    dedup_by_id,
    namespace,
    read_raw,
    windows_recomputed,
)
from twin.settings import Settings

LINE = ["cnc-1", "press-1", "weld-1", "paint-1", "qc-1"]


def _kpi_counts(kpis: list[dict[str, object]], size_s: int, until_ms: int) -> Counter[tuple[str, int]]:
    out: Counter[tuple[str, int]] = Counter()
    for k in kpis:
        if k["scope"] == "MACHINE" and k["window_size_s"] == size_s and int(k["window_end"]) <= until_ms:  # type: ignore[call-overload]
            out[(str(k["scope_id"]), int(k["window_start"]))] += int(k["total_count"])  # type: ignore[call-overload]
    return +out


def test_faults_become_alarms_kpis_state_and_bad_input_is_dead_lettered(
    stack: Infra, settings: Settings, tmp_path: Path
) -> None:
    with namespace(settings, tmp_path) as ns:
        # A device whose clock runs 2 h ahead, first on cnc-1's partition: it must not move that
        # partition's watermark (every later reading would be late, no window of its machines would
        # count): it goes to the DLQ with reason clock-skew.
        ahead = int(time.time() * 1000) + 2 * 3_600_000
        ns.publish([Outgoing("factory.telemetry", "cnc-1", {
            "event_id": "5b0e4a6e-8f57-4c47-9a7c-1d1c3ad0a001", "event_time": ahead, "source": "plant:gw-7",
            "correlation_id": "skewed", "line_id": "line-1", "machine_id": "cnc-1", "machine_type": "cnc",
            "channels": [{"name": "vibration_rms", "value": 1.0, "unit": "mm/s"}],
        })])  # fmt: skip
        events = ns.produce_sim(hours=1.0)
        # Garbage in the middle of the telemetry stream: dead-lettered with its reason, nothing else lost.
        bad = Producer(
            {"bootstrap.servers": settings.kafka.bootstrap_servers, "partitioner": "murmur2_random"}
        )
        bad.produce(ns.name("factory.telemetry"), key=b"cnc-1", value=b"\x00\x00\x00\x00\x01garbage")
        bad.produce(ns.name("factory.telemetry"), key=b"cnc-1", value=b"not avro at all")
        bad.flush(10)
        ns.start_worker()
        ns.wait_processed()

        out = ns.outputs("twin.alarms", "twin.kpis", "twin.state", "twin.anomalies")
        alarms = out["twin.alarms"]
        raised = {(a["machine_id"], a["alarm_type"]) for a in alarms}
        # The scenario's first hour: bearing wear on cnc-1 (600-1500 s) and overheating on weld-1
        # (2100-2700 s) must raise alarms; each raised alarm clears again when its fault is over.
        assert ("cnc-1", "HighVibration") in raised, raised
        assert ("weld-1", "OverTemperature") in raised, raised
        vib = [a for a in alarms if a["alarm_type"] == "HighVibration"]
        assert START_MS + 600_000 <= min(a["start_time"] for a in vib) <= START_MS + 1_500_000
        assert {"ACTIVE_UNACK", "CLEARED_UNACK"} <= {a["status"] for a in vib}
        assert all(a["source"] == "processor:alarms" for a in alarms)

        # KPI windows: every closed minute's part count equals a recount of the input topic.
        last = max(int(o.record["event_time"]) for o in events)
        until = last - 180_000  # closed for sure: past lateness (120 s) and the 60 s window
        production = [o for o in events if o.topic == "factory.production"]
        assert _kpi_counts(out["twin.kpis"], 60, until) == windows_recomputed(production, 60, until)
        line_windows = [k for k in out["twin.kpis"] if k["scope"] == "LINE"]
        assert line_windows and all(0 <= k["oee"] <= 1 for k in line_windows)

        # Twin state: the latest per machine is there, for every machine of the line.
        latest = {s["machine_id"]: s for s in out["twin.state"]}
        assert sorted(latest) == sorted(LINE)
        assert all(
            s["state"] in {"RUNNING", "IDLE", "STARVED", "BLOCKED", "DOWN", "SETUP"} for s in latest.values()
        )
        assert out["twin.anomalies"], "the bearing wear and overheating are anomalies too"

        letters = read_raw(settings, ns.name("factory.telemetry.dlq"))
        skewed = [h for _, h in letters if h["twin.dlq.error.reason"] == "clock-skew"]
        assert len(skewed) == 1 and "ahead of this worker's clock" in skewed[0]["twin.dlq.error.message"]
        garbage = [v for v, h in letters if h["twin.dlq.error.reason"] != "clock-skew"]
        assert sorted(garbage) == sorted([b"\x00\x00\x00\x00\x01garbage", b"not avro at all"])
        reasons = {h["twin.dlq.error.reason"] for _, h in letters} - {"clock-skew"}
        assert reasons <= {"schema", "magic", "body", "truncated"} and reasons


def test_ack_command_round_trip(stack: Infra, settings: Settings, tmp_path: Path) -> None:
    with namespace(settings, tmp_path) as ns:
        ns.produce_sim(hours=0.35)  # bearing wear on cnc-1 from 600 s: HighVibration raised, still active
        ns.start_worker()
        ns.wait_processed()
        before = ns.outputs("twin.alarms", "twin.kpis")
        alarm = next(a for a in before["twin.alarms"] if a["alarm_type"] == "HighVibration")
        command_id = derived_id("test-ack", alarm["alarm_id"])
        # Stamped with the operator's wall clock, as the gateway does, long after the recorded data:
        # a command must not move the machines' event-time clock (that would clear the alarm at once).
        command = {
            "event_id": command_id, "event_time": int(time.time() * 1000), "source": "test",
            "correlation_id": alarm["correlation_id"], "alarm_id": alarm["alarm_id"],
            "machine_id": alarm["machine_id"], "command": "ACK", "user": "operator-7", "comment": "on it",
        }  # fmt: skip
        ns.publish([Outgoing("twin.alarm-commands", alarm["machine_id"], command)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            acked = [
                a for a in ns.outputs("twin.alarms")["twin.alarms"]
                if a["alarm_id"] == alarm["alarm_id"] and a["acked_by"] == "operator-7"
            ]  # fmt: skip
            if acked:
                break
            time.sleep(1)
        assert acked and acked[-1]["status"] == "ACTIVE_ACK" and acked[-1]["ack_time"] is not None
        state = [s for s in ns.outputs("twin.state")["twin.state"] if s["machine_id"] == alarm["machine_id"]]
        assert any(
            a["alarm_id"] == alarm["alarm_id"] and a["status"] == "ACTIVE_ACK"
            for s in state
            for a in s["active_alarms"]
        )
        # The ack changed that alarm and nothing else: no window closed, no duration rule fired.
        after = ns.outputs("twin.alarms", "twin.kpis")
        assert len(after["twin.kpis"]) == len(before["twin.kpis"])
        changed = after["twin.alarms"][len(before["twin.alarms"]) :]
        assert {(a["alarm_id"], a["status"]) for a in changed} == {(alarm["alarm_id"], "ACTIVE_ACK")}


def test_kill_9_mid_stream_then_restart_loses_and_double_counts_nothing(
    stack: Infra, settings: Settings, tmp_path: Path
) -> None:
    with namespace(settings, tmp_path) as ns:
        events = ns.produce_sim(hours=1.0)
        worker = ns.start_worker("first")
        deadline = time.monotonic() + 120
        while ns.committed_fraction() < 0.3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ns.committed_fraction() < 1.0, "too late to kill mid-stream"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        ns.start_worker("second")
        ns.wait_processed()

        out = ns.outputs("twin.alarms", "twin.kpis", "twin.state", "twin.anomalies")
        for name, records in out.items():
            dedup_by_id(records)  # a repeated id is a replay of the same fact, never a different one
            assert records, name
        kpis = list(dedup_by_id(out["twin.kpis"]).values())
        last = max(int(o.record["event_time"]) for o in events)
        until = last - 180_000
        production = [o for o in events if o.topic == "factory.production"]
        assert _kpi_counts(kpis, 60, until) == windows_recomputed(production, 60, until)
        # One window per (scope, size, start): no window computed twice with different figures.
        keys = Counter((k["scope"], k["scope_id"], k["window_size_s"], k["window_start"]) for k in kpis)
        assert max(keys.values()) == 1


def test_two_workers_share_partitions_and_survive_a_rebalance(
    stack: Infra, settings: Settings, tmp_path: Path
) -> None:
    with namespace(settings, tmp_path) as ns:
        events = ns.produce_sim(hours=1.0)
        first = ns.start_worker("a")
        deadline = time.monotonic() + 120
        while ns.committed_fraction() < 0.2 and time.monotonic() < deadline:
            time.sleep(0.2)
        ns.start_worker("b")  # joins mid-stream: partitions move, state follows through the changelog
        time.sleep(8)
        first.send_signal(signal.SIGTERM)  # leaves: its partitions move back to b
        first.wait(60)
        ns.wait_processed()
        out = ns.outputs("twin.kpis", "twin.state")
        kpis = list(dedup_by_id(out["twin.kpis"]).values())
        last = max(int(o.record["event_time"]) for o in events)
        until = last - 180_000
        production = [o for o in events if o.topic == "factory.production"]
        assert _kpi_counts(kpis, 60, until) == windows_recomputed(production, 60, until)
        assert sorted({s["machine_id"] for s in out["twin.state"]}) == sorted(LINE)
