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
    from_file: Path | None = typer.Option(
        None, "--from-file", help="Score a labelled CSV recording instead of the simulator."
    ),
    label_column: str = typer.Option("anomaly", "--label-column", help="CSV column with 0/1 labels."),
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
    """Run labelled data through the anomaly detectors and print precision, recall and delays."""
    if from_file is not None:
        from processors.evaluation import evaluate, label_windows

        records, labels = read_labelled_csv(from_file, label_column, time_column, machine_id, delimiter)
        if not records:
            msg = f"{from_file}: no readings"
            raise ConfigError(msg)
        step = _median_step_ms(records)
        windows = label_windows(
            ((str(r["machine_id"]), int(r["event_time"]), a) for r, a in zip(records, labels, strict=True)),
            end_pad_ms=step,
        )
        result = evaluate(
            records, windows, grace_ms=round(grace * 1000), merge_gap_ms=round(merge_gap * 1000),
            labels=labels, title=f"{from_file.name} ({len(windows)} labelled fault(s))",
        )  # fmt: skip
        print_result(result, rates=True)
        return
    if factory is not None and not factory.is_file():
        msg = f"no such file: {factory}"
        raise ConfigError(msg)
    for s in seed:
        print_result(evaluate_simulation(factory, hours, s, grace_s=grace, merge_gap_s=merge_gap))


def _median_step_ms(records: list[dict[str, Any]]) -> int:
    times = sorted({int(r["event_time"]) for r in records})
    steps = sorted(b - a for a, b in itertools.pairwise(times))
    return steps[len(steps) // 2] if steps else 0
