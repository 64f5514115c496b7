"""``twin eval anomalies``: score the anomaly detectors against labelled faults.

Runs the simulator's labelled scenario (or a labelled CSV recording) through
``processors.anomaly.AnomalyProcessor`` and prints fault-level and per-event metrics
(definitions in ``processors.evaluation`` and docs/anomaly-detection.md).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from twin.errors import ConfigError

console = Console(highlight=False)

app = typer.Typer(
    help="Measure detection quality against labelled data.",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_START_MS = 1_764_000_000_000


@dataclass
class EvalResult:
    """What one evaluation run produced: fault- and event-level scores plus throughput."""

    faults: Any  # processors.evaluation.FaultScores
    points: Any  # processors.evaluation.PointCounts
    readings: int
    anomalies: int
    seconds: float
    title: str


def evaluate_records(
    records: Any, windows: Any, *, grace_s: float, merge_gap_s: float, title: str, labels: Any = None
) -> EvalResult:
    """Stream records through a fresh ``AnomalyProcessor`` and score what it raises.

    ``records``: telemetry and, optionally, machine-state records (``state`` field, no
    ``channels``) in stream order; state records go to ``observe_state``. ``windows``: the fault
    windows (``FaultWindow``); ``labels``: optional per-record truth (``None`` means "inside a
    window of its machine"). The processor never sees the labels.
    """
    from processors.anomaly import AnomalyProcessor
    from processors.evaluation import Detection, PointCounts, score_faults

    spans: dict[str, list[tuple[int, int]]] = {}
    for w in windows:
        spans.setdefault(w.machine_id, []).append((w.start_ms, w.end_ms))
    processor = AnomalyProcessor()
    detections: list[Detection] = []
    points = PointCounts()
    readings = 0
    busy = 0.0
    label_iter = iter(labels) if labels is not None else None
    for record in records:
        if "channels" not in record and "state" in record:
            processor.observe_state(record)
            continue
        started = time.perf_counter()
        emits = processor.process_one(record)
        busy += time.perf_counter() - started
        readings += 1
        machine = str(record["machine_id"])
        t = int(record["event_time"])
        detections.extend(Detection(e.key, int(e.record["event_time"])) for e in emits)
        if label_iter is not None:
            abnormal = bool(next(label_iter))
        else:
            abnormal = any(lo <= t < hi for lo, hi in spans.get(machine, ()))
        points.add(abnormal, bool(processor.alarming(machine)))
    faults = score_faults(
        windows, detections, grace_ms=round(grace_s * 1000), merge_gap_ms=round(merge_gap_s * 1000)
    )
    return EvalResult(faults, points, readings, len(detections), busy, title)


def evaluate_simulation(
    factory: Path | None, hours: float, seed: int, *, grace_s: float = 300, merge_gap_s: float = 300
) -> EvalResult:
    """The simulator's labelled scenario for ``hours`` of simulated time, through the detectors."""
    from processors.evaluation import FaultWindow
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
    title = f"{name}, seed {seed}, {hours:g} h simulated"
    return evaluate_records(stream, windows, grace_s=grace_s, merge_gap_s=merge_gap_s, title=title)


def read_labelled_csv(
    path: Path, label_column: str, time_column: str, machine_id: str | None
) -> tuple[list[dict[str, Any]], list[bool]]:
    """Telemetry records (time order) and their 0/1 labels from a CSV; the label column is split
    off before the records are built, so the detectors cannot see it."""
    import csv
    import tempfile

    from producers.file_source import BadLine, FileSource
    from schemas import load_schema

    if not path.is_file():
        msg = f"no such file: {path}"
        raise ConfigError(msg)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        msg = f"{path}: empty file"
        raise ConfigError(msg)
    header = [h.strip() for h in rows[0]]
    if label_column not in header:
        msg = f"{path}: no label column {label_column!r} (columns: {', '.join(header)})"
        raise ConfigError(msg)
    li = header.index(label_column)
    labels_by_line: dict[int, bool] = {}
    stripped: list[list[str]] = [[h for i, h in enumerate(rows[0]) if i != li]]
    for number, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        cell = row[li].strip() if li < len(row) else ""
        try:
            labels_by_line[len(stripped) + 1] = float(cell) != 0.0
        except ValueError:
            msg = f"{path}: line {number}: label {cell!r} is not 0 or 1"
            raise ConfigError(msg) from None
        stripped.append([c for i, c in enumerate(row) if i != li])
    with tempfile.TemporaryDirectory() as tmp:
        unlabelled = Path(tmp) / path.with_suffix(".csv").name
        with unlabelled.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(stripped)
        schema = load_schema("telemetry")
        source = FileSource(
            unlabelled, "factory.telemetry", "machine_id", schema.parsed,
            machine_id=machine_id, time_column=time_column,
        )  # fmt: skip
        try:
            parsed = list(source)
        except ValueError as exc:
            raise ConfigError(str(exc).replace(str(unlabelled), str(path))) from None
    records: list[tuple[int, int, dict[str, Any], bool]] = []
    for order, item in enumerate(parsed):
        if isinstance(item, BadLine):
            msg = f"{path}: line {item.line}: {item.reason}"
            raise ConfigError(msg)
        records.append((int(item.record["event_time"]), order, item.record, labels_by_line[order + 2]))
    records.sort(key=lambda r: (r[0], r[1]))  # time order; file order breaks ties
    return [r[2] for r in records], [r[3] for r in records]


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


def _delay(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:,.0f} s"


def print_result(result: EvalResult, *, rates: bool = False) -> None:
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
    rate = result.readings / result.seconds if result.seconds > 0 else math.nan
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
    grace: float = typer.Option(
        300.0, "--grace", min=0, help="Seconds after a fault's end in which an anomaly still detects it."
    ),
    merge_gap: float = typer.Option(
        300.0, "--merge-gap", min=0, help="Anomalies closer than this (s) form one alarm episode."
    ),
) -> None:
    """Run labelled data through the anomaly detectors and print precision, recall and delays."""
    if from_file is not None:
        from processors.evaluation import label_windows

        records, labels = read_labelled_csv(from_file, label_column, time_column, machine_id)
        if not records:
            msg = f"{from_file}: no readings"
            raise ConfigError(msg)
        step = _median_step_ms(records)
        windows = label_windows(
            ((str(r["machine_id"]), int(r["event_time"]), a) for r, a in zip(records, labels, strict=True)),
            end_pad_ms=step,
        )
        result = evaluate_records(
            records, windows, grace_s=grace, merge_gap_s=merge_gap,
            title=f"{from_file.name} ({len(windows)} labelled fault(s))", labels=labels,
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
