"""The XR gateway against the real broker: real Avro events in, real websocket clients out."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus

from localstack import Infra
from tests.integration.producers.helpers import consume_all
from tests.integration.xr_gateway.gateway_helpers import (
    ORIGIN,
    SECRET,
    Publisher,
    RunningGateway,
    alarm,
    open_client,
    read_until_closed,
    recv_json,
    recv_until,
    running_gateway,
    state,
    subscribe,
)
from twin.settings import Settings
from xr_gateway.auth import Role

QUEUE_MAX = 40


@pytest.fixture(scope="module")
def gateway(
    stack: Infra, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    with running_gateway(
        settings,
        tmp_path_factory.mktemp("gateway"),
        queue_max_frames=QUEUE_MAX,
        slow_client_timeout_s=8.0,
        client_msg_rate=5.0,
        client_msg_burst=5,
        max_frame_bytes=4096,
    ) as running:
        yield running


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def seen_all(wanted: dict[str, int]) -> Callable[[dict[str, Any]], bool]:
    """A ``done`` predicate: true once every machine's state reached its wanted parts_good."""
    left = dict(wanted)

    def done(message: dict[str, Any]) -> bool:
        if message.get("type") == "state":
            data = message["data"]
            if left.get(data["machine_id"]) == data["parts_good"]:
                left.pop(data["machine_id"])
        return not left

    return done


def test_snapshot_on_connect_then_filtered_deltas_in_seq_order(
    gateway: RunningGateway, publisher: Publisher
) -> None:
    line = uid("line")
    a, b, c = uid("a"), uid("b"), uid("c")
    for m in (a, b, c):
        publisher.send("twin.state", state(m, line, 1))
    publisher.flush()
    for m in (a, b, c):
        gateway.wait_state(m, 1)

    async def scenario() -> None:
        async with await open_client(gateway, gateway.token()) as ws:
            hello = await recv_json(ws)
            assert (hello["type"], hello["role"], hello["protocol"]) == ("hello", "viewer", "twin.v1")
            snapshot = await subscribe(ws, machines=[a, b])
            assert snapshot["type"] == "snapshot"
            assert sorted(m["machine_id"] for m in snapshot["machines"]) == sorted([a, b])
            assert all(m["parts_good"] == 1 for m in snapshot["machines"])
            events = [("twin.state", state(a, line, n)) for n in range(2, 7)]
            events += [
                ("twin.state", state(c, line, 2)),  # not subscribed
                ("twin.alarms", alarm(b, line)),
                ("twin.state", state(b, line, 9)),
            ]
            await publisher.publish(events)
            got = await recv_until(ws, seen_all({a: 6, b: 9}))
            seqs = [m["seq"] for m in got]
            assert seqs == sorted(set(seqs)) and seqs[0] > snapshot["seq"]
            assert {m["data"]["machine_id"] for m in got} == {a, b}
            a_parts = [m["data"]["parts_good"] for m in got if m["data"]["machine_id"] == a]
            assert a_parts == sorted(a_parts) and a_parts[-1] == 6
            if not any(m["type"] == "alarm" for m in got):
                assert (await recv_json(ws))["type"] == "alarm"

    asyncio.run(scenario())


def test_fan_out_respects_each_clients_filters(gateway: RunningGateway, publisher: Publisher) -> None:
    line = uid("line")
    x, y = uid("x"), uid("y")

    async def scenario() -> None:
        state_clients = [await open_client(gateway, gateway.token()) for _ in range(6)]
        alarm_clients = [await open_client(gateway, gateway.token()) for _ in range(6)]
        for ws in state_clients:
            await subscribe(ws, machines=[x], streams=["state"])
        for ws in alarm_clients:
            await subscribe(ws, lines=[line], streams=["alarms"])
        alarm_id = str(uuid.uuid4())
        events = [("twin.state", state(x, line, n)) for n in range(1, 4)]
        events += [("twin.state", state(y, line, 1)), ("twin.alarms", alarm(y, line, alarm_id))]
        await publisher.publish(events)
        for ws in state_clients:
            got = await recv_until(ws, seen_all({x: 3}))
            assert {(m["type"], m["data"]["machine_id"]) for m in got} == {("state", x)}
        for ws in alarm_clients:
            got = await recv_until(ws, lambda m: m.get("type") == "alarm")
            assert [m["data"]["alarm_id"] for m in got] == [alarm_id]
        for ws in state_clients + alarm_clients:
            await ws.close()

    asyncio.run(scenario())


def frames_direct(gateway: RunningGateway) -> float:
    text = httpx.get(f"{gateway.http_url}/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "twin_gateway_frames_direct":
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    raise AssertionError("twin_gateway_frames_direct_total missing from /metrics")


def test_a_keeping_up_client_gets_frames_written_at_once_in_order(
    gateway: RunningGateway, publisher: Publisher
) -> None:
    """The fan-out's fast path (xr_gateway.direct) is live under the real server, and keeps order."""
    line, machine = uid("line"), uid("m")

    async def scenario() -> None:
        ws = await open_client(gateway, gateway.token())
        await subscribe(ws, machines=[machine], streams=["state"])
        before = frames_direct(gateway)
        seqs = []
        for n in range(1, 6):  # one at a time: the client has nothing queued when each arrives
            await publisher.publish([("twin.state", state(machine, line, n))])
            got = await recv_until(ws, seen_all({machine: n}))
            seqs += [m["seq"] for m in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert frames_direct(gateway) - before >= 5
        await ws.close()

    asyncio.run(scenario())


def test_a_paused_client_gets_conflated_state_not_every_update(
    gateway: RunningGateway, publisher: Publisher
) -> None:
    line = uid("line")
    m1, m2 = uid("m1"), uid("m2")
    updates = 150

    async def scenario() -> None:
        paused = await open_client(gateway, gateway.token(), small_buffers=True)
        watcher = await open_client(gateway, gateway.token())
        for ws in (paused, watcher):
            await subscribe(ws, machines=[m1, m2], streams=["state"])
        # `paused` reads nothing while 2 x 150 large updates go out.
        await publisher.publish(
            [("twin.state", state(m, line, n, signals=100)) for n in range(1, updates + 1) for m in (m1, m2)]
        )
        await recv_until(watcher, seen_all({m1: updates, m2: updates}))
        got = await recv_until(paused, seen_all({m1: updates, m2: updates}))
        assert len(got) < 2 * updates  # older updates were replaced while it did not read
        for m in (m1, m2):
            parts = [g["data"]["parts_good"] for g in got if g["data"]["machine_id"] == m]
            assert parts == sorted(parts) and parts[-1] == updates
        await paused.send(json.dumps({"type": "ping", "id": "still-there"}))
        assert (await recv_until(paused, lambda m: m["type"] == "pong"))[-1]["id"] == "still-there"
        await paused.close()
        await watcher.close()

    asyncio.run(scenario())


def test_a_slow_client_is_closed_with_4008_and_the_others_get_everything(
    gateway: RunningGateway, publisher: Publisher
) -> None:
    line, machine = uid("line"), uid("m")
    alarms = 6 * QUEUE_MAX
    slow_before = gateway.metric("twin_gateway_slow_disconnects_total")

    async def scenario() -> None:
        slow = await open_client(gateway, gateway.token(), small_buffers=True)
        fast = await open_client(gateway, gateway.token())
        for ws in (slow, fast):
            await subscribe(ws, lines=[line], streams=["alarms"])
        await publisher.publish(
            [("twin.alarms", alarm(machine, line, message="x" * 1500))] * alarms, per_tick=20
        )
        count = 0

        def counted(message: dict[str, Any]) -> bool:
            nonlocal count
            count += message["type"] == "alarm"
            return bool(count == alarms)

        await recv_until(fast, counted)  # every alarm reached the fast client: none lost, none late
        _, code, reason = await read_until_closed(slow)
        assert code == 4008 and "too slow" in reason
        await fast.send(json.dumps({"type": "ping"}))
        assert (await recv_until(fast, lambda m: m["type"] == "pong"))[-1]["type"] == "pong"
        await fast.close()

    asyncio.run(scenario())
    assert gateway.metric("twin_gateway_slow_disconnects_total") == slow_before + 1


def _unsigned(claims: dict[str, Any]) -> str:
    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def _claims(gateway: RunningGateway, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "eve", "role": "operator", "aud": gateway.gw.jwt_audience, "iss": gateway.gw.jwt_issuer,
            "exp": now + 600}  # fmt: skip
    return {**base, **over}


@pytest.mark.parametrize(
    "case", ["missing", "expired", "wrong_audience", "wrong_issuer", "alg_none", "wrong_key"]
)
def test_bad_tokens_are_refused_at_the_handshake(gateway: RunningGateway, case: str) -> None:
    tokens: dict[str, str | None] = {
        "missing": None,
        "expired": jwt.encode(_claims(gateway, exp=int(time.time()) - 3600), SECRET, algorithm="HS256"),
        "wrong_audience": jwt.encode(_claims(gateway, aud="another-app"), SECRET, algorithm="HS256"),
        "wrong_issuer": jwt.encode(_claims(gateway, iss="evil"), SECRET, algorithm="HS256"),
        "alg_none": _unsigned(_claims(gateway)),
        "wrong_key": jwt.encode(_claims(gateway), "k" * 48, algorithm="HS256"),
    }

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            await open_client(gateway, tokens[case])
        assert refused.value.response.status_code == 401

    asyncio.run(scenario())


def test_origin_allowlist(gateway: RunningGateway) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            await open_client(gateway, gateway.token(), origin="https://evil.example")
        assert refused.value.response.status_code == 403
        # A browser-style client: allowed Origin, token in the subprotocol list.
        async with await open_client(gateway, gateway.token(), origin=ORIGIN, via_subprotocol=True) as ws:
            assert ws.subprotocol == "twin.v1"
            assert (await recv_json(ws))["type"] == "hello"

    asyncio.run(scenario())


def test_oversized_client_frames_close_the_connection(gateway: RunningGateway) -> None:
    async def scenario() -> None:
        async with await open_client(gateway, gateway.token()) as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"type": "ping", "pad": "x" * gateway.gw.max_frame_bytes}))
            _, code, _ = await read_until_closed(ws)
            assert code == 1009

    asyncio.run(scenario())


def test_message_flood_is_rate_limited_then_closed(gateway: RunningGateway) -> None:
    async def scenario() -> None:
        async with await open_client(gateway, gateway.token()) as ws:
            await recv_json(ws)
            for i in range(40):
                await ws.send(json.dumps({"type": "ping", "id": i}))
            replies, code, reason = await read_until_closed(ws)
            assert (code, reason) == (1008, "rate limit exceeded")
            assert any(r.get("code") == "rate_limited" for r in replies)
            assert sum(r["type"] == "pong" for r in replies) < 40

    asyncio.run(scenario())


def test_operator_ack_goes_to_alarm_commands_and_viewers_cannot(
    gateway: RunningGateway, publisher: Publisher, settings: Settings
) -> None:
    line, machine = uid("line"), uid("m")
    alarm_id = str(uuid.uuid4())

    async def scenario() -> str:
        operator = await open_client(gateway, gateway.token(Role.OPERATOR, user="olga"))
        viewer = await open_client(gateway, gateway.token(Role.VIEWER, user="vic"))
        for ws in (operator, viewer):
            await subscribe(ws, lines=[line], streams=["alarms"])
        await publisher.publish([("twin.alarms", alarm(machine, line, alarm_id))])
        for ws in (operator, viewer):
            await recv_until(ws, lambda m: m.get("type") == "alarm")

        await viewer.send(json.dumps({"type": "ack", "alarm_id": alarm_id, "id": "v1"}))
        refused = await recv_until(viewer, lambda m: m.get("id") == "v1")
        assert (refused[-1]["type"], refused[-1]["code"]) == ("error", "forbidden")

        await operator.send(json.dumps({"type": "ack", "alarm_id": str(uuid.uuid4()), "id": "o0"}))
        unknown = await recv_until(operator, lambda m: m.get("id") == "o0")
        assert unknown[-1]["code"] == "unknown_alarm"

        await operator.send(json.dumps({"type": "ack", "alarm_id": alarm_id, "id": "o1", "comment": "on it"}))
        accepted = (await recv_until(operator, lambda m: m.get("id") == "o1"))[-1]
        assert accepted["type"] == "command_accepted" and accepted["machine_id"] == machine

        # What the processors publish once they applied it reaches every client.
        await publisher.publish([("twin.alarms", alarm(machine, line, alarm_id, status="ACTIVE_ACK"))])
        for ws in (operator, viewer):
            got = await recv_until(
                ws, lambda m: m.get("type") == "alarm" and m["data"]["status"] == "ACTIVE_ACK"
            )
            assert got[-1]["data"]["alarm_id"] == alarm_id
        await operator.close()
        await viewer.close()
        return str(accepted["command_id"])

    command_id = asyncio.run(scenario())
    commands = consume_all(settings, [gateway.topic("twin.alarm-commands")])
    mine = [c for c in commands if str(c["alarm_id"]) == alarm_id]
    assert len(mine) == 1  # the viewer's attempt produced nothing
    assert (str(mine[0]["event_id"]), mine[0]["command"], mine[0]["user"]) == (command_id, "ACK", "olga")
    assert (mine[0]["machine_id"], mine[0]["_key"], mine[0]["comment"]) == (machine, machine, "on it")


def test_resume_from_a_sequence_or_fresh_snapshot(gateway: RunningGateway, publisher: Publisher) -> None:
    line, machine = uid("line"), uid("m")
    publisher.send("twin.state", state(machine, line, 1))
    publisher.flush()
    gateway.wait_state(machine, 1)

    async def scenario() -> None:
        async with await open_client(gateway, gateway.token()) as ws:
            hello = await recv_json(ws)
            snapshot = await subscribe(ws, machines=[machine])
            last_seq = snapshot["seq"]
        for n in (2, 3):
            publisher.send("twin.state", state(machine, line, n))
        publisher.flush()
        gateway.wait_state(machine, 3)
        async with await open_client(gateway, gateway.token()) as ws:
            await recv_json(ws)
            resume = {"epoch": hello["epoch"], "seq": last_seq}
            subscribed = await subscribe(ws, machines=[machine], resume=resume)
            assert subscribed["resumed"] is True
            got = await recv_until(ws, seen_all({machine: 3}))
            assert all(m["seq"] > last_seq for m in got)
            # a resume token from another gateway process: a fresh snapshot instead
            snap = await subscribe(ws, machines=[machine], resume={"epoch": "elsewhere", "seq": last_seq})
            assert snap["type"] == "snapshot" and snap["machines"][0]["parts_good"] == 3

    asyncio.run(scenario())


def test_rest_endpoints(gateway: RunningGateway, publisher: Publisher) -> None:
    line, machine = uid("line"), uid("m")
    publisher.send("twin.state", state(machine, line, 4))
    publisher.send("twin.alarms", alarm(machine, line))
    publisher.flush()
    gateway.wait_state(machine, 4)
    base, auth = gateway.http_url, {"Authorization": f"Bearer {gateway.token()}"}
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    assert httpx.get(f"{base}/ready").json()["ready"] is True
    assert httpx.get(f"{base}/api/machines").status_code == 401
    machines = httpx.get(f"{base}/api/machines", params={"line_id": line}, headers=auth).json()
    assert [m["machine_id"] for m in machines] == [machine]
    assert httpx.get(f"{base}/api/machines/nope", headers=auth).status_code == 404
    deadline = time.monotonic() + 30
    while not httpx.get(f"{base}/api/alarms", params={"machine_id": machine}, headers=auth).json():
        assert time.monotonic() < deadline, "alarm never showed up in /api/alarms"
        time.sleep(0.2)
    assert httpx.get(f"{base}/api/kpis", headers=auth).status_code == 200
    assert "/api/alarms" in httpx.get(f"{base}/openapi.json").json()["paths"]
    assert httpx.get(f"{base}/docs").status_code == 200
    assert httpx.post(f"{base}/api/dev/token").status_code == 404  # not in dev mode
    metrics = httpx.get(f"{base}/metrics").text
    for name in ("twin_gateway_clients_connected", "twin_gateway_frames_sent_total",
                 "twin_gateway_slow_disconnects_total", "twin_gateway_consumer_lag_records"):  # fmt: skip
        assert name in metrics
