from __future__ import annotations

from pathlib import Path

import pytest

from producers.file_source import BadLine, FileSource, parse_time_ms
from producers.records import Outgoing
from schemas import load_schema


def source(path: Path, **kw: object) -> FileSource:
    return FileSource(path, "factory.telemetry", "machine_id", load_schema("telemetry").parsed, **kw)  # type: ignore[arg-type]


def test_csv_maps_columns_to_channels_with_units(tmp_path: Path) -> None:
    f = tmp_path / "pump.csv"
    f.write_text(
        "time,motor_current [A],pressure_in (bar),flow\n"
        "2025-11-24T16:00:00Z,12.5,2.5,31\n"
        "2025-11-24T16:00:01,12.6,,31.5\n"
    )
    out = list(source(f, machine_id="pump-7", line_id="water"))
    assert all(isinstance(o, Outgoing) for o in out)
    first, second = (o.record for o in out if isinstance(o, Outgoing))
    assert first["event_time"] == 1_764_000_000_000
    assert first["machine_id"] == "pump-7" and first["line_id"] == "water"
    assert first["channels"] == [
        {"name": "motor_current", "value": 12.5, "unit": "A"},
        {"name": "pressure_in", "value": 2.5, "unit": "bar"},
        {"name": "flow", "value": 31.0, "unit": ""},
    ]
    assert second["channels"][1]["value"] is None  # empty cell: a dropped sample, not a zero
    assert second["event_time"] - first["event_time"] == 1000
    assert isinstance(out[0], Outgoing) and out[0].key == "pump-7"


def test_bad_csv_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("time,a,b\n1764000000,1,2\n1764000001,x,2\n1764000002,1\nyesterday,1,2\n1764000003,inf,2\n")
    out = list(source(f, machine_id="m", line_id="l"))
    bad = [o for o in out if isinstance(o, BadLine)]
    assert [b.line for b in bad] == [3, 4, 5, 6]
    assert "column 'a': 'x' is not a number" in bad[0].reason
    assert "2 cells, the header has 3" in bad[1].reason
    assert "neither ISO 8601 nor epoch" in bad[2].reason
    assert "not finite" in bad[3].reason
    assert sum(isinstance(o, Outgoing) for o in out) == 1


def test_csv_needs_a_machine_a_line_and_a_time_column(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("time,a\n1,2\n")
    with pytest.raises(ValueError, match="machine-id"):
        list(source(f, line_id="l"))
    with pytest.raises(ValueError, match="give --line-id or a line_id column"):
        list(source(f, machine_id="m"))  # a line is never guessed
    g = tmp_path / "y.csv"
    g.write_text("ts,a\n1,2\n")
    with pytest.raises(ValueError, match="no time column 'time'"):
        list(source(g, machine_id="m", line_id="l"))


def test_csv_columns_and_options_name_the_machine_type_and_line(tmp_path: Path) -> None:
    f = tmp_path / "pump.csv"
    f.write_text("time,line_id,flow [m3/h]\n1764000000,water,31\n")
    (out,) = list(source(f, machine_id="pump-7", machine_type="pump"))
    assert isinstance(out, Outgoing)
    assert (out.record["line_id"], out.record["machine_type"]) == ("water", "pump")


def test_ids_derived_from_the_file_are_stable_and_file_specific(tmp_path: Path) -> None:
    """Importing the same file again gives the same ids (stored once); another file, or another
    line, never the same id."""
    text = "time,flow\n1764000000,31\n1764000001,31\n"
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(text)
    b.write_text(text)
    kw = {"machine_id": "p", "line_id": "l"}
    ids = [[o.record["event_id"] for o in source(f, **kw) if isinstance(o, Outgoing)] for f in (a, a, b)]
    assert ids[0] == ids[1]
    assert len(set(ids[0]) | set(ids[2])) == 4


def test_jsonl_takes_iso_times_like_csv(tmp_path: Path) -> None:
    f = tmp_path / "e.jsonl"
    f.write_text(
        '{"event_time": "2025-11-24T16:00:00Z", "line_id": "l", "machine_id": "m", "channels": []}\n'
        '{"event_time": "noon", "line_id": "l", "machine_id": "m", "channels": []}\n'
    )
    good, bad = list(source(f))
    assert isinstance(good, Outgoing) and good.record["event_time"] == 1_764_000_000_000
    assert isinstance(bad, BadLine) and "'noon' is neither ISO 8601 nor epoch" in bad.reason


def test_jsonl_fills_the_header_and_validates(tmp_path: Path) -> None:
    f = tmp_path / "events.jsonl"
    f.write_text(
        '{"event_time": 1764000000000, "line_id": "l", "machine_id": "m", "channels": []}\n'
        "\n"
        '{"event_time": 1764000000000, "line_id": "l", "machine_id": "m", "channels": [{"name": "p", "value": "hi"}]}\n'
        "[1, 2]\n"
        "{oops\n"
        '{"event_time": 1, "machine_id": "m"}\n'
        '{"event_time": 1, "line_id": "l", "machine_id": "m", "channels": [], "colour": "red"}\n'
    )
    out = list(source(f))
    good = [o for o in out if isinstance(o, Outgoing)]
    bad = {o.line: o.reason for o in out if isinstance(o, BadLine)}
    assert len(good) == 1
    record = good[0].record
    assert record["correlation_id"] == record["event_id"] and record["source"] == "file:events.jsonl"
    assert bad[3] == "value = 'hi' (str), expected null or double"
    assert bad[4] == "expected a JSON object, got list"
    assert bad[5].startswith("not JSON")
    assert bad[6] == "missing fields line_id, channels"
    assert bad[7] == "unknown field colour"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1764000000", 1_764_000_000_000),
        ("1764000000.5", 1_764_000_000_500),
        ("1764000000123", 1_764_000_000_123),
        ("2025-11-24T16:00:00+00:00", 1_764_000_000_000),
        ("2025-11-24T16:00:00Z", 1_764_000_000_000),
        ("2025-11-24T16:00:00", 1_764_000_000_000),
    ],
)
def test_parse_time(text: str, ms: int) -> None:
    assert parse_time_ms(text) == ms
