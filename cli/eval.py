"""``twin eval anomalies``: score the anomaly detectors against labelled faults.

Runs the simulator's labelled scenario (or a labelled CSV recording) through one
``processors.anomaly.AnomalyProcessor`` per machine (``processors.evaluation.evaluate``) and prints
fault-level and per-event metrics (definitions in ``processors.evaluation`` and
docs/anomaly-detection.md).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from twin.errors import ConfigError
from twin.topics import TELEMETRY

if TYPE_CHECKING:
    from processors.evaluation import Evaluation

console = Console(highlight=False)

app = typer.Typer(
    help="Measure detection quality against labelled data.",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_START_MS = 1_764_000_000_000
DELIMITERS = ",;\t|"
"""The delimiters a CSV is sniffed among (``--delimiter`` forces one)."""
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_SNIFF_LINES = 50


def evaluate_simulation(
    factory: Path | None, hours: float, seed: int, *, grace_s: float = 300, merge_gap_s: float = 300
) -> Evaluation:
    """The simulator's labelled scenario for ``hours`` of simulated time, through the detectors."""
    from processors.evaluation import FaultWindow, evaluate
    from producers.records import EventMapper
    from sim import Simulator, load_factory
    from sim.events import StateChangeEvent, TelemetryEvent

    spec = load_factory(factory) if factory is not None else load_factory()
    sim = Simulator(spec, seed=seed, start_time_ms=DEFAULT_START_MS)
    until = DEFAULT_START_MS + round(hours * 3_600_000)
    mapper = EventMapper(seed)
    # Telemetry and state changes in the order the line produced them (one partition per machine);
    # the fault labels stay in ``sim.faults``, out of the detectors' reach.
    # Every event is mapped, so event ids are the ones the simulator publisher would produce.
    stream = [
        out.record
        for e in sim.run(until_ms=until)
        for out in (mapper.map(e),)
        if isinstance(e, TelemetryEvent | StateChangeEvent)
    ]
    windows = [
        FaultWindow(f.machine_id, f.kind, f.start_ms, until if f.end_ms is None else f.end_ms)
        for f in sim.faults
    ]
    name = factory.name if factory is not None else "default factory"
    return evaluate(
        stream, windows, grace_ms=round(grace_s * 1000), merge_gap_ms=round(merge_gap_s * 1000),
        title=f"{name}, seed {seed}, {hours:g} h simulated",
    )  # fmt: skip


def csv_delimiter(text: str, forced: str | None = None) -> str:
    """The delimiter of the CSV ``text``: ``forced`` (one character, or tab/comma/semicolon/pipe),
    else the one of ``,;\\t|`` its first lines are consistently split by (comma when none is)."""
    if forced is not None:
        sep = _DELIMITER_NAMES.get(forced.lower(), forced)
        if len(sep) != 1 or sep in '\r\n"':
            msg = f"--delimiter must be one character (or tab, comma, semicolon, pipe), not {forced!r}"
            raise ConfigError(msg)
        return sep
    sample = "".join(io.StringIO(text, newline="").readlines()[:_SNIFF_LINES])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def read_labelled_csv(
    path: Path, label_column: str, time_column: str, machine_id: str | None, delimiter: str | None = None
) -> tuple[list[dict[str, Any]], list[bool]]:
    """Telemetry records (time order) and their 0/1 labels from a CSV (delimiter sniffed unless
    given); the label column is split off before the records are built, so the detectors cannot see
    it. Each label stays with the reading of its own line; a line with a label and nothing else is
    an error naming it, as is any line that is not a reading."""
    import tempfile

    from producers.file_source import BadLine, FileSource
    from schemas import load_schema

    if not path.is_file():
        msg = f"no such file: {path}"
        raise ConfigError(msg)
    with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: spreadsheets write a BOM
        text = fh.read()
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=csv_delimiter(text, delimiter))
    header = next(rows, None)
    if header is None:
        msg = f"{path}: empty file"
        raise ConfigError(msg)
    names = [h.strip() for h in header]
    if label_column not in names:
        msg = f"{path}: no label column {label_column!r} (columns: {', '.join(names)})"
        raise ConfigError(msg)
    li = names.index(label_column)
    kept: list[list[str]] = [[h for i, h in enumerate(header) if i != li]]
    lines: list[int] = []  # the file line of each kept row (a quoted cell may span lines)
    labels: list[bool] = []
    start = rows.line_num + 1
    for row in rows:
        line, start = start, rows.line_num + 1
        cells = [c for i, c in enumerate(row) if i != li]
        label = row[li].strip() if li < len(row) else ""
        if not any(c.strip() for c in cells):
            if label:
                msg = f"{path}: line {line}: label {label!r} but no reading (every other cell is empty)"
                raise ConfigError(msg)
            continue  # a blank line
        try:
            labels.append(float(label) != 0.0)
        except ValueError:
            msg = f"{path}: line {line}: label {label!r} is not 0 or 1"
            raise ConfigError(msg) from None
        kept.append(cells)
        lines.append(line)
    with tempfile.TemporaryDirectory() as tmp:
        unlabelled = Path(tmp) / path.with_suffix(".csv").name
        with unlabelled.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(kept)
        source = FileSource(
            unlabelled, TELEMETRY, "machine_id", load_schema("telemetry").parsed,
            machine_id=machine_id, line_id="line-1", time_column=time_column,
        )  # fmt: skip
        try:
            parsed = list(source)
        except ValueError as exc:
            raise ConfigError(str(exc).replace(str(unlabelled), str(path))) from None
    # Every kept row has a non-empty cell, so the source yields exactly one item per kept row
    # (its ``line`` is the row's number in the unlabelled file: header 1, first kept row 2).
    if len(parsed) != len(lines):
        msg = f"{path}: {len(parsed)} readings from {len(lines)} rows"
        raise ConfigError(msg)
    records: list[tuple[int, int, dict[str, Any], bool]] = []
    for order, item in enumerate(parsed):
        if isinstance(item, BadLine):
            msg = f"{path}: line {lines[item.line - 2]}: {item.reason}"
            raise ConfigError(msg)
        records.append((int(item.record["event_time"]), order, item.record, labels[order]))
    records.sort(key=lambda r: (r[0], r[1]))  # time order; file order breaks ties
    return [r[2] for r in records], [r[3] for r in records]


def normalised_recording(
    path: Path,
    dest: Path,
    *,
    label_column: str,
    time_column: str,
    delimiter: str | None,
    sample_period_s: float | None,
    fault_onset: int | None,
    index_column: str | None = None,
    sample_rate_hz: float | None = None,
    windows: list[tuple[int, int]] | None = None,
    transposed: bool = False,
) -> tuple[str, str, str]:
    """``path`` as a CSV ``read_labelled_csv`` takes, written to ``dest``; returns its label column,
    time column and delimiter.

    Plants and public sets export more than one shape: a headerless numeric matrix (the first line is
    all numbers: columns become ``x1``, ``x2``, ...), whitespace-separated columns (Tennessee
    Eastman's ``.dat``), no time column (``--sample-period``: row ``i`` is at ``i`` periods), no label
    column (``--fault-onset N``: rows from the N-th, counted from 0, are abnormal; a headerless file
    with neither is a normal recording, every row normal), a sample-index column (``index_column``
    and ``sample_rate_hz``: row time = index / rate), labels as time windows (``windows``, epoch ms,
    inclusive: NAB's ``combined_windows.json``), a headerless matrix stored one variable per row
    (``transposed``: Tennessee Eastman's ``d00.dat``). A file with a header, a time column and labels
    is copied as it is.
    """
    if not path.is_file():
        msg = f"no such file: {path}"
        raise ConfigError(msg)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        text = fh.read()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        msg = f"{path}: empty file"
        raise ConfigError(msg)
    sep, rows, headerless = _split_rows(path, text, lines, delimiter, transposed=transposed)
    header = [f"x{i + 1}" for i in range(len(rows[0]))] if headerless else [c.strip() for c in rows[0]]
    body = rows if headerless else rows[1:]
    index_at = _index_at(path, header, index_column, sample_rate_hz, sample_period_s)
    has_time = time_column in header or index_at is not None
    has_label = label_column in header
    plain = has_time and has_label and fault_onset is None and index_at is None
    if windows is None and plain and sep is not None and not headerless:
        dest.write_text(text, encoding="utf-8")
        return label_column, time_column, sep
    _check_shape(path, header, label_column, time_column, windows=windows, fault_onset=fault_onset)
    if not headerless and not has_label and fault_onset is None and windows is None:
        msg = (
            f"{path}: no label column {label_column!r} (columns: {', '.join(header)}); "
            "give --label-column, --labels-json FILE or --fault-onset N"
        )
        raise ConfigError(msg)
    _check_time(path, time_column, has_time=has_time, sample_period_s=sample_period_s)
    time_at = header.index(time_column) if windows is not None else -1
    if index_at is not None:
        time_column = _free_name(header, time_column)
    out_header = [h for j, h in enumerate(header) if j != index_at]
    if not has_time or index_at is not None:
        out_header.append(time_column)
    if not has_label:
        out_header.append(label_column)
    with dest.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(out_header)
        for i, row in enumerate(body):
            extra: list[str] = []
            if index_at is not None:
                assert sample_rate_hz is not None
                extra.append(_index_time(path, row, index_at, sample_rate_hz, i + (1 if headerless else 2)))
            elif not has_time:
                assert sample_period_s is not None
                extra.append(str(DEFAULT_START_MS + round(i * sample_period_s * 1000)))
            if windows is not None:
                t = _epoch_ms(row[time_at] if time_at < len(row) else "")
                extra.append("1" if t is not None and any(a <= t <= b for a, b in windows) else "0")
            elif not has_label:
                extra.append("1" if fault_onset is not None and i >= fault_onset else "0")
            writer.writerow([c.strip() for j, c in enumerate(row) if j != index_at] + extra)
    return label_column, time_column, ","


def _split_rows(
    path: Path, text: str, lines: list[str], delimiter: str | None, *, transposed: bool
) -> tuple[str | None, list[list[str]], bool]:
    """The delimiter (None: whitespace), the rows split into cells (a transposed matrix turned
    back: one reading per row) and whether the first row is data rather than a header."""
    sep: str | None = (
        csv_delimiter(text, delimiter) if delimiter or any(c in lines[0] for c in DELIMITERS) else None
    )
    rows = [next(csv.reader([line], delimiter=sep)) if sep else line.split() for line in lines]
    headerless = all(_is_number(c) for c in rows[0] if c.strip())
    if transposed:
        if not headerless or len({len(r) for r in rows}) != 1:
            msg = f"{path}: --warmup-transposed needs a headerless numeric matrix with equal-length rows"
            raise ConfigError(msg)
        rows = [list(col) for col in zip(*rows, strict=True)]
    return sep, rows, headerless


def _check_shape(
    path: Path,
    header: list[str],
    label_column: str,
    time_column: str,
    *,
    windows: list[tuple[int, int]] | None,
    fault_onset: int | None,
) -> None:
    """Label sources that exclude each other, as one-line errors."""
    has_label = label_column in header
    if windows is not None:
        if has_label or fault_onset is not None:
            msg = f"{path}: labels come from --labels-json; it has a label column or --fault-onset too"
            raise ConfigError(msg)
        if time_column not in header:
            msg = f"{path}: --labels-json needs a time column {time_column!r} to place its windows"
            raise ConfigError(msg)
    if has_label and fault_onset is not None:
        msg = f"{path}: has a label column {label_column!r}; --fault-onset is for files without one"
        raise ConfigError(msg)


def _check_time(path: Path, time_column: str, *, has_time: bool, sample_period_s: float | None) -> None:
    if not has_time and sample_period_s is None:
        msg = (
            f"{path}: no time column {time_column!r}; give --sample-period S (seconds between rows), "
            "--time-column, or --index-column with --sample-rate"
        )
        raise ConfigError(msg)


def _index_at(
    path: Path,
    header: list[str],
    index_column: str | None,
    sample_rate_hz: float | None,
    sample_period_s: float | None,
) -> int | None:
    """Where the sample-index column is (None: no ``--index-column``); misuse is one-line error."""
    if index_column is None:
        if sample_rate_hz is not None:
            msg = "--sample-rate needs --index-column (the column that counts samples)"
            raise ConfigError(msg)
        return None
    if sample_rate_hz is None:
        msg = "--index-column needs --sample-rate HZ (row time = index / rate)"
        raise ConfigError(msg)
    if sample_period_s is not None:
        msg = "give --sample-rate with --index-column, or --sample-period without it, not both"
        raise ConfigError(msg)
    if index_column not in header:
        msg = f"{path}: no index column {index_column!r} (columns: {', '.join(header)})"
        raise ConfigError(msg)
    return header.index(index_column)


def _index_time(path: Path, row: list[str], at: int, rate_hz: float, line: int) -> str:
    cell = row[at].strip() if at < len(row) else ""
    try:
        index = float(cell)
    except ValueError:
        msg = f"{path}: line {line}: sample index {cell!r} is not a number"
        raise ConfigError(msg) from None
    if not math.isfinite(index) or index < 0:
        msg = f"{path}: line {line}: sample index {cell!r} is not a count (0, 1, 2, ...)"
        raise ConfigError(msg)
    return str(DEFAULT_START_MS + round(index / rate_hz * 1000))


def _free_name(header: list[str], name: str) -> str:
    while name in header:
        name = f"_{name}"
    return name


def _epoch_ms(text: str) -> int | None:
    """ISO 8601 (naive: UTC) or epoch seconds/ms as epoch ms; None when neither."""
    from datetime import UTC, datetime

    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return round(stamp.timestamp() * 1000)
    return int(number) if abs(number) >= 1e11 else int(number * 1000)


def labels_json_windows(path: Path, recording: Path, key: str | None = None) -> list[tuple[int, int]]:
    """Fault windows (epoch ms, inclusive) of ``recording`` from a JSON file in NAB's
    ``labels/combined_windows.json`` form, ``{"<dir>/<file>.csv": [[start, end], ...]}``: the entry
    ``key``, else the one whose name is the recording's file name (an empty list: all normal)."""
    import json

    if not path.is_file():
        msg = f"no such file: {path}"
        raise ConfigError(msg)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        msg = f"{path}: not JSON ({exc})"
        raise ConfigError(msg) from None
    if not isinstance(doc, dict):
        msg = f"{path}: expected an object of file name -> [[start, end], ...]"
        raise ConfigError(msg)
    names = [key] if key is not None else [k for k in doc if Path(str(k)).name == recording.name]
    if len(names) != 1 or names[0] not in doc:
        msg = f"{path}: no single entry for {key or recording.name!r}; give --labels-key"
        raise ConfigError(msg)
    out: list[tuple[int, int]] = []
    for window in doc[names[0]]:
        ends = [_epoch_ms(str(w)) for w in window] if isinstance(window, list) else []
        if len(ends) != 2 or ends[0] is None or ends[1] is None:
            msg = f"{path}: {names[0]}: window {window!r} is not [start, end]"
            raise ConfigError(msg)
        out.append((ends[0], ends[1]))
    return out


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def _delay(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:,.0f} s"


def print_result(result: Evaluation, *, rates: bool = False) -> None:
    """Print the metric tables of one run."""
    fs, pc = result.faults, result.points
    kinds = Table(title=f"Anomaly detection: {result.title}", title_justify="left")
    for column in ("fault kind", "faults", "detected", "recall", "median delay", "p90 delay"):
        kinds.add_column(column, justify="left" if column == "fault kind" else "right")
    for k in fs.kinds.values():
        kinds.add_row(
            k.kind, str(k.faults), str(k.detected), _fmt(k.recall),
            _delay(k.median_delay_s), _delay(k.p90_delay_s),
        )  # fmt: skip
    from processors.evaluation import percentile

    kinds.add_row(
        "all", str(fs.faults), str(fs.detected), _fmt(fs.recall),
        _delay(percentile(fs.delays_s, 0.5)), _delay(percentile(fs.delays_s, 0.9)), style="bold",
    )  # fmt: skip
    console.print(kinds)
    summary = Table(show_header=True, title_justify="left")
    for column in ("level", "precision", "recall", "F1", "detail"):
        summary.add_column(column, justify="left" if column in ("level", "detail") else "right")
    summary.add_row(
        "per fault", _fmt(fs.precision), _fmt(fs.recall), _fmt(fs.f1),
        f"{fs.detected}/{fs.faults} faults detected, "
        f"{fs.false_episodes} false of {fs.episodes} alarm episodes",
    )  # fmt: skip
    summary.add_row(
        "per event", _fmt(pc.precision), _fmt(pc.recall), _fmt(pc.f1),
        f"tp {pc.tp:,}  fp {pc.fp:,}  fn {pc.fn:,}  tn {pc.tn:,}",
    )  # fmt: skip
    if rates:
        summary.add_row(
            "false-alarm rate", "", "", "", f"{_fmt(pc.false_alarm_rate, 4)} of normal readings flagged"
        )
        summary.add_row(
            "missed-alarm rate",
            "",
            "",
            "",
            f"{_fmt(pc.missed_alarm_rate, 4)} of abnormal readings not flagged",
        )
    console.print(summary)
    rate = result.readings / result.detector_s if result.detector_s > 0 else math.nan
    console.print(
        f"{result.readings:,} readings, {result.anomalies:,} anomalies emitted; "
        f"detectors ran at {rate:,.0f} readings/s (one core)"
    )


@app.command("anomalies")
def anomalies(
    factory: Path | None = typer.Option(
        None, "--factory", help="Line layout YAML with a labelled scenario (default: the built-in line)."
    ),
    hours: float = typer.Option(
        6.0, "--hours", min=0.1, help="Simulated hours (3 scenario cycles by default)."
    ),
    seed: list[int] = typer.Option([1], "--seed", help="Simulator seed; repeat for several runs."),
    from_file: list[Path] | None = typer.Option(
        None,
        "--from-file",
        help="Score a recording instead of the simulator (CSV with any delimiter, or whitespace-separated "
        "columns, with or without a header); repeat for several files: FDR and FAR per file and overall.",
    ),
    label_column: str = typer.Option("anomaly", "--label-column", help="CSV column with 0/1 labels."),
    fault_onset: int | None = typer.Option(
        None,
        "--fault-onset",
        min=0,
        help="For files without a label column: rows from this index on (0 = the first data row) are "
        "abnormal; without it and without labels a file is a normal recording (FAR only).",
    ),
    sample_period: float | None = typer.Option(
        None,
        "--sample-period",
        min=0.001,
        help="Seconds between rows, for files without a time column (row i is at i periods).",
    ),
    time_column: str = typer.Option(
        "time", "--time-column", help="CSV time column (ISO 8601 or epoch s/ms)."
    ),
    machine_id: str | None = typer.Option(
        None, "--machine-id", help="Machine id for CSV rows without a machine_id column."
    ),
    delimiter: str | None = typer.Option(
        None,
        "--delimiter",
        help="CSV delimiter, e.g. ';' or tab (default: sniffed among , ; tab |).",
        show_default=False,
    ),
    index_column: str | None = typer.Option(
        None,
        "--index-column",
        help="Column counting samples (0, 1, 2, ...) instead of a time column: row time = index / "
        "--sample-rate. It is not a signal: it is not scored.",
    ),
    sample_rate: float | None = typer.Option(
        None, "--sample-rate", min=1e-9, help="Samples per second of --index-column (e.g. 0.5, 1000)."
    ),
    labels_json: Path | None = typer.Option(
        None,
        "--labels-json",
        help='Labels as time windows, NAB\'s combined_windows.json form {"dir/file.csv": [[start, end], '
        "...]}: readings inside a window (inclusive) are abnormal; the entry is the one named like the "
        "file (or --labels-key).",
    ),
    labels_key: str | None = typer.Option(None, "--labels-key", help="The --labels-json entry to use."),
    warmup: int = typer.Option(
        0,
        "--warmup",
        min=0,
        help="The first N readings of each file are learning only (normal data, not scored); the "
        "detectors' warm-up covers them.",
    ),
    warmup_file: Path | None = typer.Option(
        None,
        "--warmup-file",
        help="A normal recording streamed first through each file's detectors, learning only (not "
        "scored; same shape options as the files, its own rows are all normal).",
    ),
    warmup_transposed: bool = typer.Option(
        False,
        "--warmup-transposed",
        help="The --warmup-file is a headerless matrix stored one variable per row (Tennessee "
        "Eastman's d00.dat, 52 x 500): read it transposed.",
    ),
    grace: float = typer.Option(
        300.0, "--grace", min=0, help="Seconds after a fault's end in which an anomaly still detects it."
    ),
    merge_gap: float = typer.Option(
        300.0, "--merge-gap", min=0, help="Anomalies closer than this (s) form one alarm episode."
    ),
) -> None:
    """Run labelled data through the anomaly detectors and print precision, recall and delays.

    Recordings: e.g. Tennessee Eastman's test files (fault from sample 161, 3-minute samples), after
    the normal training run: twin eval anomalies --warmup-file d00.dat --warmup-transposed
    --from-file d01_te.dat --from-file d02_te.dat --sample-period 180 --fault-onset 160
    """
    if from_file:
        shape = _Shape(
            label_column=label_column, time_column=time_column, delimiter=delimiter,
            sample_period_s=sample_period, index_column=index_column, sample_rate_hz=sample_rate,
        )  # fmt: skip
        results = [
            _evaluate_file(
                path, shape, machine_id=machine_id, fault_onset=fault_onset, grace_s=grace,
                merge_gap_s=merge_gap, labels_json=labels_json, labels_key=labels_key, warmup=warmup,
                warmup_file=warmup_file, warmup_transposed=warmup_transposed,
            )
            for path in from_file
        ]  # fmt: skip
        if len(results) == 1:
            print_result(results[0], rates=True)
        print_rates(results, [p.name for p in from_file])
        return
    if factory is not None and not factory.is_file():
        msg = f"no such file: {factory}"
        raise ConfigError(msg)
    for s in seed:
        print_result(evaluate_simulation(factory, hours, s, grace_s=grace, merge_gap_s=merge_gap))


@dataclass(frozen=True)
class _Shape:
    """How the recordings are laid out (the command's shape options)."""

    label_column: str
    time_column: str
    delimiter: str | None
    sample_period_s: float | None
    index_column: str | None
    sample_rate_hz: float | None


def _read_recording(
    path: Path,
    shape: _Shape,
    machine_id: str,
    *,
    fault_onset: int | None,
    windows: list[tuple[int, int]] | None = None,
    transposed: bool = False,
) -> tuple[list[dict[str, Any]], list[bool]]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / path.with_suffix(".csv").name
        label, time_col, sep = normalised_recording(
            path, plain, label_column=shape.label_column, time_column=shape.time_column,
            delimiter=shape.delimiter, sample_period_s=shape.sample_period_s, fault_onset=fault_onset,
            index_column=shape.index_column, sample_rate_hz=shape.sample_rate_hz, windows=windows,
            transposed=transposed,
        )  # fmt: skip
        try:
            records, labels = read_labelled_csv(plain, label, time_col, machine_id, sep)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(plain), str(path))) from None
    if not records:
        msg = f"{path}: no readings"
        raise ConfigError(msg)
    return records, labels


def _evaluate_file(
    path: Path,
    shape: _Shape,
    *,
    machine_id: str | None,
    fault_onset: int | None,
    grace_s: float,
    merge_gap_s: float,
    labels_json: Path | None = None,
    labels_key: str | None = None,
    warmup: int = 0,
    warmup_file: Path | None = None,
    warmup_transposed: bool = False,
) -> Evaluation:
    from processors.anomaly import AnomalyConfig
    from processors.evaluation import evaluate, label_windows

    if warmup_transposed and warmup_file is None:
        msg = "--warmup-transposed is about --warmup-file; give that file too"
        raise ConfigError(msg)
    machine = machine_id or path.stem
    windows = None if labels_json is None else labels_json_windows(labels_json, path, labels_key)
    records, labels = _read_recording(path, shape, machine, fault_onset=fault_onset, windows=windows)
    step = _median_step_ms(records)
    prefix: list[dict[str, Any]] = []
    if warmup_file is not None:
        prefix, _ = _read_recording(
            warmup_file, shape, machine, fault_onset=None, transposed=warmup_transposed
        )
        _check_width(warmup_file, prefix, path, records)
        # The recording follows its warm-up in event time (one sample period after it).
        shift = max(0, int(prefix[-1]["event_time"]) + step - int(records[0]["event_time"]))
        records = [{**r, "event_time": int(r["event_time"]) + shift} for r in records]
    if warmup >= len(records):
        msg = f"{path}: --warmup {warmup} leaves none of its {len(records)} readings to score"
        raise ConfigError(msg)
    learn_only = len(prefix) + warmup
    config = None
    if learn_only:
        # The detectors' warm-up covers the learning-only prefix (and not less than the default's).
        base = AnomalyConfig()
        config = AnomalyConfig(warmup_events=max(base.warmup_events, learn_only))
    windows_ = label_windows(
        ((str(r["machine_id"]), int(r["event_time"]), a) for r, a in zip(records, labels, strict=True)),
        end_pad_ms=step,
    )
    return evaluate(
        [*prefix, *records], windows_, grace_ms=round(grace_s * 1000),
        merge_gap_ms=round(merge_gap_s * 1000), labels=[*([False] * len(prefix)), *labels],
        config=config, warmup=learn_only, title=f"{path.name} ({len(windows_)} labelled fault(s))",
    )  # fmt: skip


def _check_width(warm: Path, prefix: list[dict[str, Any]], path: Path, records: list[dict[str, Any]]) -> None:
    """The warm-up recording must have the recording's channels (a transposed file would not)."""
    a = [c["name"] for c in prefix[0]["channels"]]
    b = [c["name"] for c in records[0]["channels"]]
    if a != b:
        hint = " (stored one variable per row? give --warmup-transposed)" if len(a) != len(b) else ""
        msg = f"{warm}: its {len(a)} channels are not the {len(b)} channels of {path}{hint}"
        raise ConfigError(msg)


def print_rates(results: list[Evaluation], names: list[str]) -> None:
    """FDR (share of abnormal readings flagged) and FAR (share of normal readings flagged) per file
    and over all of them, as process-monitoring papers report them, next to precision/recall/F1."""
    from processors.evaluation import PointCounts, percentile

    table = Table(title="Detection rates per file", title_justify="left")
    for column in ("file", "readings", "abnormal", "FDR", "FAR", "prec.", "F1", "delay"):
        table.add_column(column, justify="left" if column == "file" else "right", no_wrap=column == "file")
    total = PointCounts()
    delays: list[float] = []
    for name, r in zip(names, results, strict=True):
        pc = r.points
        total.tp, total.fp, total.fn, total.tn = (
            total.tp + pc.tp, total.fp + pc.fp, total.fn + pc.fn, total.tn + pc.tn,
        )  # fmt: skip
        delays += r.faults.delays_s
        table.add_row(
            name, f"{r.readings:,}", f"{pc.tp + pc.fn:,}", _fmt(pc.recall), _fmt(pc.false_alarm_rate),
            _fmt(pc.precision), _fmt(pc.f1), _delay(percentile(r.faults.delays_s, 0.5)),
        )  # fmt: skip
    if len(results) > 1:
        table.add_row(
            "all", f"{sum(r.readings for r in results):,}", f"{total.tp + total.fn:,}", _fmt(total.recall),
            _fmt(total.false_alarm_rate), _fmt(total.precision), _fmt(total.f1),
            _delay(percentile(delays, 0.5)), style="bold",
        )  # fmt: skip
    console.print(table)
    console.print(
        "FDR: abnormal readings flagged / abnormal readings; FAR: normal readings flagged / normal "
        "readings; delay: median time from a fault's onset to its first anomaly"
    )


def _median_step_ms(records: list[dict[str, Any]]) -> int:
    times = sorted({int(r["event_time"]) for r in records})
    steps = sorted(b - a for a, b in itertools.pairwise(times))
    return steps[len(steps) // 2] if steps else 0


# ``twin eval rul`` lives in its own module (remaining useful life on C-MAPSS, docs/maintenance.md).
from cli.rul import rul as _rul  # noqa: E402

app.command("rul")(_rul)
