"""The stages without Kafka: replays skipped up to a snapshot, snapshot round trips (the current
format and the old FTW1 pack, whose pickle part is never read), duplicate forwards, a failing step
dead-lettered with its id, and every derived record counted once.

Real simulator records run through the real steps; the wire format is JSON here (the Avro codec and
its registry are covered by the integration tests).
"""

from __future__ import annotations

import json
import logging
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from pipelines.stage import Inbound, LineStage, MachineStage, Outbound, Stage
from processors.stages import MACHINE_STEPS, TwinConfig
from producers.session import simulator_records
from sim import Simulator, load_factory
from twin.dlq import headers_dict
from twin.errors import SnapshotError

T0 = 1_764_000_000_000
LINE_TOPIC = "line-events"
MACHINES = ["cnc-1", "press-1", "weld-1", "paint-1", "qc-1"]


class JsonCodec:
    def decode(self, value: bytes | None) -> Any:
        return json.loads(value or b"null")

    def encode(self, record: Any) -> bytes:
        return json.dumps(record, sort_keys=True).encode()


def codecs(_topic: str) -> JsonCodec:
    return JsonCodec()


def machine_stage(stored: dict[str, bytes] | None = None) -> MachineStage:
    stage = MachineStage(TwinConfig(), codecs, LINE_TOPIC)
    if stored is not None:
        stage.lookup = stored.get
    return stage


def line_stage(stored: dict[str, bytes] | None = None) -> LineStage:
    stage = LineStage(TwinConfig(), codecs)
    if stored is not None:
        stage.lookup = stored.get
    return stage


@pytest.fixture(scope="module")
def messages() -> list[Inbound]:
    """25 simulated minutes of the default line (cnc-1's bearing wear raises an alarm from 600 s),
    each machine on its own partition, each topic partition in offset order."""
    sim = Simulator(load_factory(), seed=1, start_time_ms=T0)
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for o in simulator_records(sim, 1, T0, T0 + 25 * 60_000):
        partition = MACHINES.index(o.key)
        offset = offsets.get((o.topic, partition), 0)
        offsets[(o.topic, partition)] = offset + 1
        out.append(Inbound(o.topic, partition, offset, o.key.encode(), json.dumps(o.record).encode()))
    return out


class Line:
    """The machine stage's forwards as the line stage's input topic (one partition)."""

    def __init__(self, stage: LineStage) -> None:
        self.stage = stage
        self.offset = 0

    def feed(self, outs: list[Outbound]) -> list[Outbound]:
        """``outs`` with the forwards replaced by what the line stage made of them."""
        result = []
        for o in outs:
            if o.topic != LINE_TOPIC:
                result.append(o)
                continue
            msg = Inbound(LINE_TOPIC, 0, self.offset, o.key, o.value)
            self.offset += 1
            result += self.stage.offer(msg, 0.0)
        return result


def run(stage: MachineStage, line: Line, msgs: list[Inbound]) -> list[Outbound]:
    out: list[Outbound] = []
    for m in msgs:
        out += line.feed(stage.handle(m))
    return out


def decoded(outs: list[Outbound]) -> list[tuple[str, bytes | None, Any]]:
    return [(o.topic, o.key, json.loads(o.value or b"null")) for o in outs]


# -- replays and snapshot round trips ----------------------------------------------------------


def test_inputs_at_or_below_the_snapshot_position_are_skipped_after_a_restart(
    messages: list[Inbound],
) -> None:
    first = machine_stage()
    run(first, Line(line_stage()), messages[:3000])
    stored = {s.key: s.data for s in first.snapshots()}
    assert sorted(stored) == sorted(MACHINES)
    restarted = machine_stage(stored)
    # A crash before the commit: the broker hands the same inputs over again.
    assert run(restarted, Line(line_stage()), messages[:3000]) == []
    assert restarted.stats["replayed_skipped"] == 3000 and restarted.stats["processed"] == 0
    assert restarted.stats["restored"] == len(MACHINES)
    # The next input is new: processed.
    restarted.handle(messages[3000])
    assert restarted.stats["processed"] == 1


def test_a_restored_stage_continues_with_identical_outputs_and_ids(messages: list[Inbound]) -> None:
    split = 6000  # cnc-1's HighVibration alarm is active here
    whole = machine_stage()
    whole_line = Line(line_stage())
    run(whole, whole_line, messages[:split])
    expected = decoded(run(whole, whole_line, messages[split:]))

    first, first_line = machine_stage(), Line(line_stage())
    run(first, first_line, messages[:split])
    assert first.slots["cnc-1"].chain.processors["alarms"].active()  # type: ignore[attr-defined]
    machines = {s.key: s.data for s in first.snapshots()}
    lines = {s.key: s.data for s in first_line.stage.snapshots()}
    second, second_line = machine_stage(machines), Line(line_stage(lines))
    second_line.offset = first_line.offset
    got = decoded(run(second, second_line, messages[split:]))
    assert got == expected
    assert {t for t, _, _ in got} >= {"twin.state", "twin.kpis", "twin.anomalies"}
    # And the state they end with is the same, byte for byte.
    for a, b in ((whole, second), (whole_line.stage, second_line.stage)):
        assert {s.key: s.data for s in a.snapshots()} == {s.key: s.data for s in b.snapshots()}


def test_a_stage_snapshot_is_one_json_document_embedding_each_steps_snapshot(messages: list[Inbound]) -> None:
    stage = machine_stage()
    run(stage, Line(line_stage()), messages[:500])
    doc = json.loads(next(s.data for s in stage.snapshots() if s.key == "cnc-1"))
    assert (doc["format"], doc["version"], doc["key"]) == ("machine-stage", 2, "cnc-1")
    assert list(doc["steps"]) == [s.id for s in MACHINE_STEPS]
    assert {step["format"] for step in doc["steps"].values()} == {
        "twin-state",
        "alarms",
        "anomaly",
        "maintenance",
        "machine-kpis",
        "derived-state",
    }
    sent = [m.offset for m in messages[:500] if m.partition == 0 and m.topic == "factory.telemetry"]
    assert doc["positions"]["factory.telemetry:0"] == max(sent)


# -- the old FTW1 snapshot ---------------------------------------------------------------------


class WritesAFile:
    """A pickle that, once unpickled, writes a file: what a hostile changelog record could hold."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.path, "code ran"))


def pack(parts: dict[str, bytes]) -> bytes:
    """The version 1 layout: b"FTW1", a 4-byte size, a JSON index of (name, size), the parts."""
    index = json.dumps([[name, len(data)] for name, data in parts.items()]).encode()
    return b"".join([b"FTW1", struct.pack(">I", len(index)), index, *parts.values()])


def old_layout(data: bytes, payload: bytes) -> bytes:
    """A version 2 machine-stage snapshot rewritten as version 1 wrote it, with its step parts in
    their own old formats and ``payload`` as the anomaly part (a pickle then)."""
    doc = json.loads(data)
    steps = doc["steps"]
    alarms = steps["alarms"]
    for a in alarms["alarms"]:
        del a["peak_value"], a["clear_value"]
    kpis = {k: v for k, v in steps["kpi"].items() if k != "version"}
    twin = {
        "anomaly": payload,
        "alarms": json.dumps({**alarms, "format": "factory-twin/alarms", "version": 1}).encode(),
        "kpis": json.dumps({**kpis, "format": 1, "kind": "machine-kpis"}).encode(),
        "state": json.dumps({**steps["state"], "format": "factory-twin/twin-state"}).encode(),
    }
    meta = json.dumps({"positions": doc["positions"], "extra": doc["dedup"]}).encode()
    return pack({"meta": meta, "twin": pack(twin)})


def test_an_old_ftw1_snapshot_is_migrated_without_unpickling_its_anomaly_part(
    messages: list[Inbound], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    evil = pickle.dumps(WritesAFile(tmp_path / "owned"))
    pickle.loads(pickle.dumps(WritesAFile(tmp_path / "proof")))
    assert (tmp_path / "proof").read_text() == "code ran"

    split = 6000
    first = machine_stage()
    run(first, Line(line_stage()), messages[:split])
    stored = {s.key: old_layout(s.data, evil) for s in first.snapshots()}
    active = first.slots["cnc-1"].chain.processors["alarms"].active()  # type: ignore[attr-defined]
    assert active

    with caplog.at_level(logging.WARNING, logger="pipelines.stage"):
        migrated = machine_stage(stored)
        assert run(migrated, Line(line_stage()), messages[:split]) == []  # positions kept: all skipped
    assert not (tmp_path / "owned").exists()
    warnings = [r.getMessage() for r in caplog.records if "cnc-1" in r.getMessage()]
    assert len(warnings) == 1 and "version 1" in warnings[0] and "anomaly" in warnings[0]
    # The JSON parts live on: the active alarm, the windows; the detectors start over.
    restored = migrated.slots["cnc-1"].chain.processors["alarms"].active()  # type: ignore[attr-defined]
    assert [a["alarm_id"] for a in restored] == [a["alarm_id"] for a in active]
    kpis = migrated.slots["cnc-1"].chain.processors["kpi"]
    assert (
        json.loads(kpis.snapshot())["cursors"]
        == json.loads(first.slots["cnc-1"].chain.processors["kpi"].snapshot())["cursors"]
    )
    run(migrated, Line(line_stage()), messages[split:])
    doc = json.loads(next(s.data for s in migrated.snapshots() if s.key == "cnc-1"))
    assert doc["version"] == 2 and doc["steps"]["alarms"]["version"] == 2


def test_an_old_ftw1_line_snapshot_keeps_its_windows_trigger_and_dedup_marks(messages: list[Inbound]) -> None:
    line = Line(line_stage())
    run(machine_stage(), line, messages[:4000])
    (snap,) = line.stage.snapshots()
    doc = json.loads(snap.data)
    kpis = {k: v for k, v in doc["steps"]["line-kpi"].items() if k != "version"}
    twin = {
        "kpis": json.dumps({**kpis, "format": 1, "kind": "line-kpis"}).encode(),
        "trigger": json.dumps(
            {**doc["steps"]["schedule-trigger"], "format": "factory-twin/schedule-trigger"}
        ).encode(),
    }
    meta = json.dumps({"positions": doc["positions"], "extra": doc["dedup"]}).encode()
    migrated = line_stage({"line-1": pack({"meta": meta, "twin": pack(twin)})})
    slot = migrated.slot("line-1", 0)
    assert slot.dedup == doc["dedup"] and slot.positions == doc["positions"]
    assert json.loads(slot.chain.processors["line-kpi"].snapshot()) == doc["steps"]["line-kpi"]
    assert (
        json.loads(slot.chain.processors["schedule-trigger"].snapshot()) == doc["steps"]["schedule-trigger"]
    )


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\x80\x04garbage", "not JSON"),
        (b'{"format": "machine-stage", "version": 3, "steps": {}}', "version 3"),
        (b'{"format": "line-stage", "version": 2}', "'line-stage'"),
        (b"FTW1\x00\x00\x00\x05[[1,", r"version 1 \(FTW1\) is damaged"),
    ],
)
def test_a_snapshot_this_build_cannot_read_is_one_line_naming_what_was_found(
    messages: list[Inbound], data: bytes, says: str
) -> None:
    stage = machine_stage({"cnc-1": data})
    with pytest.raises(SnapshotError, match=says) as raised:
        stage.handle(next(m for m in messages if m.key == b"cnc-1"))
    assert "\n" not in str(raised.value) and "'cnc-1'" in str(raised.value)


# -- duplicates, failures, counts ----------------------------------------------------------------


def forward(topic: str, record: dict[str, Any], src: str | None = None, offset: int = -1) -> bytes:
    body: dict[str, Any] = {"t": topic, "r": record}
    if src is not None:
        body |= {"src": src, "o": offset}
    return json.dumps(body).encode()


def test_the_line_stage_skips_forwards_a_machine_replay_repeats(messages: list[Inbound]) -> None:
    machines, line = machine_stage(), Line(line_stage())
    outs = []
    for m in messages[:3000]:
        outs += machines.handle(m)
    forwards = [o for o in outs if o.topic == LINE_TOPIC]
    windows = [o for o in forwards if json.loads(o.value or b"")["t"] == "twin.kpis"]
    raw = [o for o in forwards if "src" in json.loads(o.value or b"")]
    assert windows and raw
    line.feed(forwards)
    processed = line.stage.stats["processed"]
    # A machine-stage replay forwards the same raw inputs and windows again, at new line offsets.
    assert line.feed(raw[-50:] + windows[-5:]) == []
    assert line.stage.stats["duplicates_skipped"] == 55
    assert line.stage.stats["processed"] == processed


def test_a_failing_step_dead_letters_the_input_with_the_step_id(messages: list[Inbound]) -> None:
    stage = machine_stage()
    run(stage, Line(line_stage()), messages[:200])
    part = next(m for m in messages if m.topic == "factory.production" and m.key == b"cnc-1")
    bad = Inbound(
        part.topic,
        part.partition,
        10_000,
        part.key,
        json.dumps({**json.loads(part.value or b""), "good": "yes"}).encode(),
    )
    (letter,) = stage.handle(bad)
    headers = headers_dict(letter.headers)
    assert letter.topic == "factory.production.dlq" and letter.value == bad.value
    assert headers["twin.dlq.error.reason"] == "processing" and headers["twin.dlq.step"] == "kpi"
    assert headers["twin.dlq.source.offset"] == "10000" and "good" in headers["twin.dlq.error.message"]
    assert stage.stats["processing_errors"] == 1

    line = line_stage()
    record = {**json.loads(next(m for m in messages if m.topic == "factory.state").value or b"")}
    del record["state"]
    (letter,) = line.offer(
        Inbound(LINE_TOPIC, 0, 0, b"line-1", forward("factory.state", record, "x:0", 1)), 0.0
    )
    assert headers_dict(letter.headers)["twin.dlq.step"] == "schedule-trigger"
    assert letter.topic == "line-events.dlq"


def test_every_derived_record_is_counted_once(messages: list[Inbound]) -> None:
    machines, line = machine_stage(), line_stage()
    derived = {"machines": 0, "lines": 0}
    line_offset = 0
    for m in messages:
        for o in machines.handle(m):
            if o.topic != LINE_TOPIC:
                derived["machines"] += 1
                continue
            derived["lines"] += len(line.offer(Inbound(LINE_TOPIC, 0, line_offset, o.key, o.value), 0.0))
            line_offset += 1
    for stage in (machines, line):
        assert isinstance(stage, Stage)
        assert stage.stats["emitted"] == derived[stage.name] == sum(stage.step_emitted.values()) > 0
    assert set(machines.step_emitted) == {"state", "alarms", "anomaly", "kpi"}
    assert {"line-kpi"} <= set(line.step_emitted) <= {"line-kpi", "schedule-trigger"}


def test_step_times_are_exported_per_step(messages: list[Inbound]) -> None:
    def sample(suffix: str, step: str, **labels: str) -> float:
        return (
            REGISTRY.get_sample_value(f"twin_processor_step_seconds{suffix}", {"step": step, **labels}) or 0.0
        )

    before = {step.id: sample("_count", step.id) for step in MACHINE_STEPS}
    run(machine_stage(), Line(line_stage()), messages[:300])
    for step in MACHINE_STEPS:
        calls = sample("_count", step.id)
        assert calls > before[step.id]
        assert sample("_bucket", step.id, le="+Inf") == calls and sample("_sum", step.id) > 0
    assert sample("_count", "line-kpi") > 0


@pytest.fixture(scope="module")
def one_partition(messages: list[Inbound]) -> list[Inbound]:
    """The same 25 minutes with every machine on partition 0, as a topic with fewer partitions than
    machines has them: keys share their partition's event time."""
    offsets: dict[str, int] = {}
    out = []
    for m in messages:
        offset = offsets.get(m.topic, 0)
        offsets[m.topic] = offset + 1
        out.append(Inbound(m.topic, 0, offset, m.key, m.value))
    return out


@pytest.mark.parametrize(("committed", "checkpoint"), [(2000, 2600), (5200, 5900), (6000, 6000)])
def test_a_replay_after_a_crash_repeats_what_the_first_run_derived(
    one_partition: list[Inbound], committed: int, checkpoint: int
) -> None:
    """Killed after a checkpoint's snapshots were written but before its offsets were committed:
    the replay starts at the older commit, the keys are loaded one by one at their first message,
    and still every record comes out with the id and content of the first run."""
    first = machine_stage()
    first_line = Line(line_stage())
    before = run(first, first_line, one_partition[:checkpoint])
    stored = {s.key: s.data for s in first.snapshots()}
    after = run(first, first_line, one_partition[checkpoint:])
    original: dict[str, Any] = {}
    for topic, _, record in decoded(before + after):
        assert original.setdefault(record["event_id"], (topic, record)) == (topic, record)

    replay = run(machine_stage(stored), Line(line_stage()), one_partition[committed:])
    machine_side = [
        (topic, record)
        for topic, _, record in decoded(replay)
        if topic in ("twin.state", "twin.alarms", "twin.anomalies") or record.get("scope") == "MACHINE"
    ]
    assert machine_side
    for topic, record in machine_side:
        assert original.get(record["event_id"]) == (topic, record), topic
    expected = {
        r["event_id"] for t, _, r in decoded(after) if t != "schedule.requests" and r.get("scope") != "LINE"
    }
    assert expected <= {record["event_id"] for _, record in machine_side}


def test_a_key_loaded_after_its_partition_moved_on_is_advanced_before_its_message(
    one_partition: list[Inbound],
) -> None:
    """After a restart the keys are loaded one by one, at their first message; one whose windows
    closed with its partition's event time in the first run has them closed before that message
    too, so its twin state shows the same OEE under the same id."""
    first = machine_stage()
    outs = [first.handle(m) for m in one_partition]
    # A message whose advance closed the windows of several machines: restart right before it.
    at = next(
        i
        for i, o in enumerate(outs)
        if i > 3000 and len({json.loads(x.value or b"")["scope_id"] for x in o if x.topic == "twin.kpis"}) > 1
    )
    original = {r["event_id"]: (t, r) for o in outs for t, _, r in decoded(o) if t != LINE_TOPIC}
    again = machine_stage()
    for m in one_partition[:at]:
        again.handle(m)
    restarted = machine_stage({s.key: s.data for s in again.snapshots()})
    replay = [
        (t, r) for m in one_partition[at:] for t, _, r in decoded(restarted.handle(m)) if t != LINE_TOPIC
    ]
    assert replay
    for topic, record in replay:
        assert original[record["event_id"]] == (topic, record), topic
