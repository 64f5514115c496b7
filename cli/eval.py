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
) -> tuple[str, str, str]:
    """``path`` as a CSV ``read_labelled_csv`` takes, written to ``dest``; returns its label column,
    time column and delimiter.

    Plants and public sets export more than one shape: a headerless numeric matrix (the first line is
    all numbers: columns become ``x1``, ``x2``, ...), whitespace-separated columns (Tennessee
    Eastman's ``.dat``), no time column (``--sample-period``: row ``i`` is at ``i`` periods), no label
    column (``--fault-onset N``: rows from the N-th, counted from 0, are abnormal; a headerless file
    with neither is a normal recording, every row normal). A file with a header, a time column and
    labels is copied as it is.
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
    first = lines[0]
    sep: str | None = (
        csv_delimiter(text, delimiter) if delimiter or any(c in first for c in DELIMITERS) else None
    )
    rows = [next(csv.reader([line], delimiter=sep)) if sep else line.split() for line in lines]
    headerless = all(_is_number(c) for c in rows[0] if c.strip())
    header = [f"x{i + 1}" for i in range(len(rows[0]))] if headerless else [c.strip() for c in rows[0]]
    body = rows if headerless else rows[1:]
    has_time = time_column in header
    has_label = label_column in header
    if has_time and has_label and fault_onset is None and sep is not None and not headerless:
        dest.write_text(text, encoding="utf-8")
        return label_column, time_column, sep
    if has_label and fault_onset is not None:
        msg = f"{path}: has a label column {label_column!r}; --fault-onset is for files without one"
        raise ConfigError(msg)
    if not headerless and not has_label and fault_onset is None:
        msg = (
            f"{path}: no label column {label_column!r} (columns: {', '.join(header)}); "
            "give --label-column, or --fault-onset N"
        )
        raise ConfigError(msg)
    if not has_time and sample_period_s is None:
        msg = (
            f"{path}: no time column {time_column!r}; give --sample-period S (seconds between rows) "
            "or --time-column"
        )
        raise ConfigError(msg)
    out_header = list(header)
    if not has_time:
        out_header.append(time_column)
    if not has_label:
        out_header.append(label_column)
    with dest.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(out_header)
        for i, row in enumerate(body):
            extra: list[str] = []
            if not has_time:
                assert sample_period_s is not None
                extra.append(str(DEFAULT_START_MS + round(i * sample_period_s * 1000)))
            if not has_label:
                extra.append("1" if fault_onset is not None and i >= fault_onset else "0")
            writer.writerow([c.strip() for c in row] + extra)
    return label_column, time_column, ","


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
    grace: float = typer.Option(
        300.0, "--grace", min=0, help="Seconds after a fault's end in which an anomaly still detects it."
    ),
    merge_gap: float = typer.Option(
        300.0, "--merge-gap", min=0, help="Anomalies closer than this (s) form one alarm episode."
    ),
) -> None:
    """Run labelled data through the anomaly detectors and print precision, recall and delays.

    Recordings: e.g. Tennessee Eastman's test files (fault from sample 161, 3-minute samples):
    twin eval anomalies --from-file d01_te.dat --from-file d02_te.dat --sample-period 180 --fault-onset 160
    """
    if from_file:
        results = [
            _evaluate_file(
                path, label_column=label_column, time_column=time_column, machine_id=machine_id,
                delimiter=delimiter, sample_period_s=sample_period, fault_onset=fault_onset,
                grace_s=grace, merge_gap_s=merge_gap,
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


def _evaluate_file(
    path: Path,
    *,
    label_column: str,
    time_column: str,
    machine_id: str | None,
    delimiter: str | None,
    sample_period_s: float | None,
    fault_onset: int | None,
    grace_s: float,
    merge_gap_s: float,
) -> Evaluation:
    import tempfile

    from processors.evaluation import evaluate, label_windows

    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / path.with_suffix(".csv").name
        label, time_col, sep = normalised_recording(
            path, plain, label_column=label_column, time_column=time_column, delimiter=delimiter,
            sample_period_s=sample_period_s, fault_onset=fault_onset,
        )  # fmt: skip
        try:
            records, labels = read_labelled_csv(plain, label, time_col, machine_id or path.stem, sep)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(plain), str(path))) from None
    if not records:
        msg = f"{path}: no readings"
        raise ConfigError(msg)
    step = _median_step_ms(records)
    windows = label_windows(
        ((str(r["machine_id"]), int(r["event_time"]), a) for r, a in zip(records, labels, strict=True)),
        end_pad_ms=step,
    )
    return evaluate(
        records, windows, grace_ms=round(grace_s * 1000), merge_gap_ms=round(merge_gap_s * 1000),
        labels=labels, title=f"{path.name} ({len(windows)} labelled fault(s))",
    )  # fmt: skip


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
