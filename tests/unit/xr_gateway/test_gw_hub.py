"""The hub: snapshot + deltas with sequence numbers, filters, resume, slow clients kicked."""

from __future__ import annotations

import json
from typing import Any

from xr_gateway.auth import Principal, Role
from xr_gateway.filters import Subscription
from xr_gateway.hub import CLOSE_TOO_SLOW, Client, Hub
from xr_gateway.queue import ClientQueue
from xr_gateway.settings import GatewaySettings


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def state(machine: str, line: str = "line-1", n: int = 0) -> tuple[str, dict[str, Any]]:
    return "state", {"machine_id": machine, "line_id": line, "correlation_id": "c", "parts_good": n,
                     "event_time": 1, "active_alarms": []}  # fmt: skip


def alarm(alarm_id: str, machine: str, status: str = "ACTIVE_UNACK") -> tuple[str, dict[str, Any]]:
    return "alarms", {"alarm_id": alarm_id, "machine_id": machine, "line_id": "line-1", "status": status,
                      "correlation_id": "corr", "event_time": 1}  # fmt: skip


def make(**gw: Any) -> tuple[Hub, Clock]:
    clock = Clock()
    return Hub(GatewaySettings(**gw), clock=clock), clock


def connect(hub: Hub, max_frames: int = 100) -> tuple[Client, list[tuple[int, str]]]:
    kicks: list[tuple[int, str]] = []
    client = Client(Principal("u", Role.VIEWER, 0.0), ClientQueue(max_frames))
    client.kick = lambda code, reason: kicks.append((code, reason))
    hub.add(client)
    return client, kicks


def messages(client: Client) -> list[dict[str, Any]]:
    return [json.loads(f.text) for f in client.queue.drain()]


def test_snapshot_then_deltas_in_seq_order() -> None:
    hub, _ = make()
    hub.publish([state("a"), state("b"), state("c", line="line-2")])
    client, _ = connect(hub)
    hub.subscribe(client, Subscription.parse({"lines": ["line-1"]}))
    subscribed, snapshot = messages(client)
    assert subscribed["type"] == "subscribed" and not subscribed["resumed"]
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == 3
    assert sorted(m["machine_id"] for m in snapshot["machines"]) == ["a", "b"]
    hub.publish([state("a", n=1), alarm("x", "b"), state("c", line="line-2")])
    deltas = messages(client)
    assert [(d["type"], d["seq"]) for d in deltas] == [("state", 4), ("alarm", 5)]


def test_the_same_frame_text_goes_to_every_client() -> None:
    hub, _ = make()
    clients = [connect(hub)[0] for _ in range(3)]
    for c in clients:
        hub.subscribe(c, Subscription())
        c.queue.drain()
    hub.publish([state("a")])
    frames = [c.queue.drain()[0] for c in clients]
    assert all(f is frames[0] for f in frames)


def test_a_paused_client_gets_the_latest_state_per_machine() -> None:
    hub, _ = make()
    client, kicks = connect(hub, max_frames=10)
    hub.subscribe(client, Subscription())
    client.queue.drain()
    hub.publish([state(m, n=i) for i in range(50) for m in ("a", "b")])
    got = messages(client)
    assert [(m["data"]["machine_id"], m["data"]["parts_good"]) for m in got] == [("a", 49), ("b", 49)]
    assert kicks == []


def test_alarm_overflow_kicks_only_the_slow_client() -> None:
    hub, _ = make()
    slow, slow_kicks = connect(hub, max_frames=5)
    fast, fast_kicks = connect(hub, max_frames=5)
    for c in (slow, fast):
        hub.subscribe(c, Subscription())
        c.queue.drain()
    for i in range(20):
        hub.publish([alarm(f"al-{i}", "a")])
        fast.queue.drain()
    assert [code for code, _ in slow_kicks] == [CLOSE_TOO_SLOW]
    assert fast_kicks == [] and slow not in hub.clients and len(slow.queue) == 0
    assert fast in hub.clients


def test_a_stalled_client_is_kicked_after_the_timeout() -> None:
    hub, clock = make(slow_client_timeout_s=2.0)
    client, kicks = connect(hub)
    hub.subscribe(client, Subscription())
    hub.sweep()
    clock.t = 1.0
    hub.sweep()
    assert kicks == []  # pending for 1 s only
    clock.t = 2.5
    hub.sweep()
    assert [code for code, _ in kicks] == [CLOSE_TOO_SLOW]


def test_resume_replays_what_was_missed_else_snapshot() -> None:
    hub, _ = make(resume_buffer_frames=5)
    client, _ = connect(hub)
    hub.publish([state("a"), state("b")])
    assert hub.subscribe(client, Subscription(), resume=(hub.epoch, 1))
    _, replayed = messages(client)
    assert (replayed["type"], replayed["seq"]) == ("state", 2)
    # another epoch (a restarted gateway) or a seq out of the ring: a fresh snapshot
    assert not hub.subscribe(client, Subscription(), resume=("other", 1))
    assert messages(client)[1]["type"] == "snapshot"
    hub.publish([state("a", n=i) for i in range(10)])
    assert not hub.subscribe(client, Subscription(), resume=(hub.epoch, 2))


def test_open_alarms_in_snapshot_and_index() -> None:
    hub, _ = make()
    hub.publish([alarm("x", "a"), alarm("y", "b"), alarm("y", "b", status="CLEARED_ACK")])
    assert hub.alarm_target("x") == ("a", "corr") and hub.alarm_target("y") is None
    client, _ = connect(hub)
    hub.subscribe(client, Subscription.parse({"streams": ["alarms"]}))
    snapshot = messages(client)[1]
    assert [a["alarm_id"] for a in snapshot["alarms"]] == ["x"] and snapshot["machines"] == []


def test_nan_becomes_null() -> None:
    hub, _ = make()
    client, _ = connect(hub)
    hub.subscribe(client, Subscription())
    client.queue.drain()
    _, record = state("a")
    record["oee"] = float("nan")
    hub.publish([("state", record)])
    assert messages(client)[0]["data"]["oee"] is None


def plan(line: str, correlation: str, t: int, solver: str = "cpsat") -> tuple[str, dict[str, Any]]:
    return "plans", {"plan_id": f"p-{correlation}", "line_id": line, "correlation_id": correlation, "event_time": t,
                     "solver": solver, "assignments": [
                         {"job_id": "j1", "machine_id": "m1", "start_time": t + 5000, "end_time": t + 8000,
                          "operation_id": "cut", "setup_s": 2.0},
                         {"job_id": "j2", "machine_id": "m1", "start_time": t + 8000, "end_time": t + 9000,
                          "operation_id": "", "setup_s": 0.0}]}  # fmt: skip


def test_plans_are_kept_latest_per_line_and_by_cause_with_gantt_rows() -> None:
    from xr_gateway.rest import plan_view

    hub, _ = make(history_max=2)
    hub.publish(
        [plan("l1", "c1", 1000), plan("l1", "c2", 3000), plan("l2", "c3", 2000), plan("l1", "old", 500)]
    )
    assert hub.plan_records["l1"]["correlation_id"] == "c2"  # a late-read older plan does not win
    assert list(hub.plans_by_correlation) == ["c3", "old"]  # bounded, oldest forgotten
    view = plan_view(hub.plan_records["l1"])
    assert view["gantt_origin_ms"] == 8000
    assert view["gantt"][0] == {"machine": "m1", "job": "j1", "operation": "cut", "start_s": 0.0, "end_s": 3.0,
                                "setup_s": 2.0}  # fmt: skip
