"""The client message rate limit."""

from __future__ import annotations

from xr_gateway.ratelimit import TokenBucket


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.allow(0.5)  # one token back after half a second at 2/s
    assert not bucket.allow(0.5)


def test_idle_time_does_not_bank_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=2, now=0.0)
    assert sum(bucket.allow(1000.0) for _ in range(5)) == 2
