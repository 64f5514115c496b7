"""Named steps: the walker's routing order, failures named by step, declarations it refuses, and the
twin's own declarations."""

from __future__ import annotations

from typing import ClassVar

import pytest

from processors.base import Emit, Record
from processors.stages import LINE_INPUTS, LINE_STEPS, MACHINE_INPUTS, MACHINE_STEPS
from processors.steps import Chain, Step, check_steps
from twin.errors import ConfigError, ProcessingError, SnapshotError


class Echo:
    """Derives one record per input on ``<id>.out``, and ``advance`` one ``<id>.tick``; logs calls."""

    log: ClassVar[list[str]] = []

    def __init__(self, key: str, config: object, step_id: str, fail_on: str = "") -> None:
        self.key, self.id, self.fail_on = key, step_id, fail_on

    def process_one(self, topic: str, record: Record) -> list[Emit]:
        Echo.log.append(f"{self.id}<{topic}")
        if topic == self.fail_on:
            msg = f"cannot take {topic}"
            raise ValueError(msg)
        return [Emit(f"{self.id}.out", self.key, {"from": topic})]

    def advance(self, event_time_ms: int) -> list[Emit]:
        return [Emit(f"{self.id}.tick", self.key, {"at": event_time_ms})]

    def snapshot(self) -> bytes:
        return f'{{"format":"echo","version":1,"id":"{self.id}"}}'.encode()

    def restore(self, data: bytes) -> None:
        if b"echo" not in data:
            msg = "not an echo snapshot"
            raise SnapshotError(msg)


def echo(step_id: str, fail_on: str = "") -> Step:
    return Step(step_id, lambda key, config: Echo(key, config, step_id, fail_on))


STEPS = (
    Step("state", echo("state").make, consumes=("in",), takes=("alarms",)),
    Step("alarms", echo("alarms").make, consumes=("in",), takes=("anomaly",)),
    Step("anomaly", echo("anomaly").make, consumes=("in",)),
)


def test_outputs_come_depth_first_so_causes_precede_their_effects() -> None:
    Echo.log = []
    out = Chain("m", STEPS, None).process_one("in", {})
    assert [e.topic for e in out] == [
        "state.out",
        "alarms.out",  # the alarm raised by the input ...
        "state.out",  # ... and the twin state with it
        "anomaly.out",
        "alarms.out",  # the alarm the anomaly raised ...
        "state.out",
    ]
    assert Echo.log[:3] == ["state<in", "alarms<in", "state<alarms.out"]
    assert Chain("m", STEPS, None).process_one("other", {}) == []  # no step consumes it


def test_advance_routes_what_each_step_derives_too() -> None:
    out = Chain("m", STEPS, None).advance(5)
    assert [e.topic for e in out] == [
        "state.tick",
        "alarms.tick",
        "state.out",
        "anomaly.tick",
        "alarms.out",
        "state.out",
    ]


def test_a_failing_step_is_named_even_when_reached_through_another_steps_output() -> None:
    steps = (
        STEPS[0],
        Step("alarms", echo("alarms", fail_on="anomaly.out").make, ("in",), ("anomaly",)),
        STEPS[2],
    )
    with pytest.raises(ProcessingError, match=r"ValueError: cannot take anomaly\.out") as raised:
        Chain("m", steps, None).process_one("in", {})
    assert raised.value.step == "alarms" and raised.value.reason == "processing"


def test_snapshots_by_step_id_and_a_bad_part_names_its_step() -> None:
    chain = Chain("m", STEPS, None)
    assert list(chain.snapshots()) == ["state", "alarms", "anomaly"]
    chain.restore({"alarms": b'{"format":"echo"}', "gone": b"{}"})  # a step no longer declared: ignored
    with pytest.raises(SnapshotError, match="step 'anomaly': not an echo snapshot"):
        chain.restore({"anomaly": b"{}"})


@pytest.mark.parametrize(
    ("steps", "says"),
    [
        ((echo("a"), echo("a")), "duplicate"),
        ((Step("a", echo("a").make, takes=("b",)),), "'b', which is not another step"),
        ((Step("a", echo("a").make, takes=("a",)),), "not another step"),
        (
            (Step("a", echo("a").make, takes=("b",)), Step("b", echo("b").make, takes=("a",))),
            "cycle: a -> b -> a",
        ),
    ],
)
def test_declarations_the_walker_cannot_run_are_refused(steps: tuple[Step, ...], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        check_steps(steps)


def test_the_twins_declarations() -> None:
    check_steps(MACHINE_STEPS)
    check_steps(LINE_STEPS)
    assert [s.id for s in MACHINE_STEPS] == [
        "state",
        "alarms",
        "anomaly",
        "maintenance",
        "kpi",
        "derived-state",
    ]
    assert [s.id for s in LINE_STEPS] == ["line-kpi", "schedule-trigger"]
    assert MACHINE_INPUTS == (
        "factory.telemetry",
        "factory.production",
        "factory.state",
        "twin.alarm-commands",
    )
    assert set(LINE_INPUTS) == {
        "twin.kpis",
        "factory.state",
        "factory.production",
        "twin.alarms",
        "twin.maintenance",
    }
