"""Subscription filters."""

from __future__ import annotations

import pytest

from twin.errors import FilterError
from xr_gateway.filters import STREAMS, Subscription


def test_empty_filter_means_everything() -> None:
    sub = Subscription.parse({})
    assert sub.streams == frozenset(STREAMS)
    assert sub.matches("alarms", "line-9", "m-9")


def test_lines_machines_streams() -> None:
    sub = Subscription.parse({"lines": ["line-1"], "machines": ["cnc-1"], "streams": ["state", "kpis"]})
    assert sub.matches("state", "line-1", "cnc-1")
    assert not sub.matches("state", "line-1", "press-1")
    assert not sub.matches("state", "line-2", "cnc-1")
    assert not sub.matches("alarms", "line-1", "cnc-1")
    # a line KPI (no machine) passes a machine filter, not a line filter
    assert sub.matches("kpis", "line-1", None)
    assert not sub.matches("kpis", "line-2", None)


@pytest.mark.parametrize(
    "message",
    [{"streams": ["telemetry"]}, {"lines": "line-1"}, {"machines": [1]}, {"machines": ["x"] * 1001}],
)
def test_bad_filters_are_refused(message: dict[str, object]) -> None:
    with pytest.raises(FilterError):
        Subscription.parse(message)


def test_from_query() -> None:
    assert Subscription.from_query({}) is None
    sub = Subscription.from_query({"machines": "a, b", "streams": "state"})
    assert sub is not None and sub.machines == {"a", "b"} and sub.streams == {"state"}
