"""The per-client queue: conflation by key, order by sequence, a hard bound."""

from __future__ import annotations

from xr_gateway.frames import Frame
from xr_gateway.queue import ClientQueue


def state(seq: int, machine: str) -> Frame:
    return Frame(seq, "state", "l1", machine, ("state", machine), f"s{seq}")


def alarm(seq: int) -> Frame:
    return Frame(seq, "alarms", "l1", "m", None, f"a{seq}")


def test_the_latest_state_per_machine_wins_and_order_is_by_seq() -> None:
    q = ClientQueue(max_frames=10)
    for f in (state(1, "a"), state(2, "b"), alarm(3), state(4, "a")):
        assert q.put(f, 0.0)
    assert [f.seq for f in q.drain()] == [2, 3, 4]
    assert q.conflated == 1
    assert len(q) == 0 and q.pending_since is None


def test_a_paused_client_holds_one_frame_per_machine_however_many_updates() -> None:
    q = ClientQueue(max_frames=5)
    for seq in range(1, 10_001):
        assert q.put(state(seq, f"m{seq % 3}"), float(seq))
    assert len(q) == 3
    assert q.pending_since == 1.0  # the stall clock runs from the first undelivered frame


def test_non_conflated_frames_overflow_the_bound() -> None:
    q = ClientQueue(max_frames=3)
    assert all(q.put(alarm(s), 0.0) for s in (1, 2, 3))
    assert not q.put(alarm(4), 0.0)
    # a state update for a machine already queued still conflates at the bound
    q2 = ClientQueue(max_frames=1)
    assert q2.put(state(1, "a"), 0.0) and q2.put(state(2, "a"), 0.0)
    assert not q2.put(state(3, "b"), 0.0)


def test_one_shared_frame_object_is_queued_once_per_client() -> None:
    shared = alarm(7)
    q1, q2 = ClientQueue(4), ClientQueue(4)
    assert q1.put(shared, 0.0) and q2.put(shared, 0.0)
    assert q1.drain()[0] is q2.drain()[0] is shared
