"""``twin produce``: publish the simulator's events, or a recording, into Kafka."""

from __future__ import annotations

import itertools
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from cli.infra import console
from cli.metrics import start_metrics
from twin.errors import ConfigError
from twin.settings import Settings
from twin.topics import TELEMETRY


def produce(  # noqa: PLR0912 - a file import or a simulated run, each with its options
    factory: Path | None = typer.Option(
        None, "--factory", help="Line layout YAML (default: the built-in line)."
    ),
    rate: float | None = typer.Option(
        None, "--rate", min=0, help="Max events per second (default: unlimited)."
    ),
    duration: float | None = typer.Option(
        None, "--duration", min=0, help="Stop after this many wall seconds."
    ),
    speed: float | None = typer.Option(
        None,
        "--speed",
        min=0,
        help="Simulated seconds per wall second (default 1; unlimited when --rate is given). Sped up "
        "with --duration, the run starts in the past and ends now; unlimited, it fills the past day.",
    ),
    seed: int = typer.Option(
        42, "--seed", help="Simulator seed: the same seed and run id give the same events and ids."
    ),
    run_id: str | None = typer.Option(
        None,
        "--run-id",
        help="Retry an earlier run (the id it printed) with the same seed, duration and speed: the "
        "same events and ids, stored once. Default: a new run.",
    ),
    namespace: str = typer.Option(
        "",
        "--namespace",
        help="Topic namespace (prefix) to write into, e.g. 'plant.'; the workers that read it take "
        "the same TWIN_PROCESSORS__TOPIC_PREFIX, TWIN_SINKS__TOPIC_PREFIX, TWIN_GATEWAY__TOPIC_PREFIX.",
    ),
    follow_plans: bool = typer.Option(
        True,
        "--follow-plans/--no-follow-plans",
        help="Simulated lines dispatch by the newest schedule.plans record for them (twin schedule serve).",
    ),
    from_file: Path | None = typer.Option(
        None, "--from-file", help="Publish a JSONL or CSV recording instead."
    ),
    topic_name: str = typer.Option(TELEMETRY, "--topic", help="Topic for --from-file."),
    machine_id: str | None = typer.Option(
        None, "--machine-id", help="Machine id for CSV rows (--from-file) without a machine_id column."
    ),
    machine_type: str | None = typer.Option(
        None, "--machine-type", help="Machine type for CSV rows (--from-file) without a machine_type column."
    ),
    line_id: str | None = typer.Option(
        None, "--line-id", help="Line id for CSV rows (--from-file) without a line_id column."
    ),
    plant: Path | None = typer.Option(
        None,
        "--plant",
        help="Plant file (docs/plant.md): the line and type of --machine-id come from it (--from-file).",
    ),
    time_column: str = typer.Option(
        "time", "--time-column", help="CSV time column (ISO 8601 or epoch s/ms)."
    ),
    replay_speed: float = typer.Option(
        0.0,
        "--replay-speed",
        min=0,
        help="--from-file: 1 keeps the recording's timing, 10 is 10x; 0 as fast as possible.",
    ),
    acked_ids: Path | None = typer.Option(
        None, "--acked-ids", help="Append each acknowledged event id to this file."
    ),
    labels: Path | None = typer.Option(
        None,
        "--labels",
        help="Write the simulator's injected faults (ground truth) to this JSONL file at the end.",
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        help="Serve /metrics here (0: off). Default: TWIN_METRICS__PRODUCE_PORT (9467).",
    ),
) -> None:
    """Publish events with an idempotent acks=all producer; Ctrl-C flushes and prints a summary.

    A simulated run never stamps an event later than the wall clock: sped up with --duration, it
    starts far enough in the past to end now; an event that would still be early waits for its time.
    """
    from cli.servers import require
    from producers import Pacer
    from producers.runs import RunId, RunLog
    from producers.session import simulator_records

    settings = Settings()
    # Everything the arguments alone can get wrong is reported before a port is bound or a
    # server is asked: a typo in a file name is its own one line, not a metrics-port clash.
    source: Iterable[Any]
    simulator: Any = None
    if from_file is not None:
        if plant is not None and machine_id is not None:
            line_id, machine_type = _from_plant(plant, machine_id, line_id, machine_type)
        source = _recording(
            from_file, topic_name, machine_id=machine_id, machine_type=machine_type,
            line_id=line_id, time_column=time_column,
        )  # fmt: skip
        pacer = Pacer(rate, replay_speed or None)
        label = f"{from_file.name} -> {namespace}{topic_name}"
    else:
        from sim import Simulator, load_factory

        run = RunId.parse(run_id) if run_id is not None else RunId.new()
        spec = load_factory(factory) if factory is not None else load_factory()
        effective_speed = speed if speed is not None else (None if rate else 1.0)
        # A sped-up run goes where it meets no earlier run of its lines (in this namespace).
        lines = [f"{namespace}{line.id}" for line in spec.lines]
        start_ms = RunLog(settings.infra.root / "runs.jsonl").start_of(
            run, lines, duration_s=duration, speed=effective_speed
        )
        simulator = Simulator(spec, seed=seed, start_time_ms=start_ms)
        source = ()  # made below, once the broker is known to answer (plans are read from it)
        pacer = Pacer(rate, effective_speed, live_edge=True)
        label = (
            f"simulator run {run} (seed {seed}), speed {effective_speed or 'unlimited'}x, "
            f"rate {rate or 'unlimited'}/s, from {_iso(start_ms)}"
        )
    require(settings)
    from pipelines.topics import ensure_topics
    from producers.session import ProduceSession

    chosen = start_metrics(settings, "produce", metrics_port, addr="127.0.0.1")
    if chosen:
        console.print(f"metrics on http://127.0.0.1:{chosen}/metrics")
    from twin.topics import prefixed

    ensure_topics(settings, prefixed(namespace))
    follower = None
    if simulator is not None:
        if follow_plans:
            from producers.plans import PlanFollower

            follower = PlanFollower(settings, simulator, prefix=namespace, on_adopt=_announce)
        source = simulator_records(
            simulator, seed, simulator.start_time_ms, run_id=str(run), follower=follower
        )
    if namespace:
        source = _into(namespace, source)
    session = ProduceSession(settings, prefix=namespace, acked_ids=acked_ids)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: session.stop())

    console.print(f"producing: {label}")
    interactive = console.is_terminal
    last_print = [time.monotonic()]

    def tick(stats: Any) -> None:
        line = (
            f"{stats.rate():9,.0f} events/s  produced {stats.produced:,}  acked {stats.acked:,}  "
            f"failed {stats.failed:,}  invalid {stats.invalid:,}  in flight {stats.in_flight:,}"
        )
        if interactive:
            sys.stdout.write("\r" + line)
            sys.stdout.flush()
        elif time.monotonic() - last_print[0] >= 5:
            last_print[0] = time.monotonic()
            console.print(line)

    def bad(line: Any) -> None:
        reason = escape(line.reason)  # a reason quoting '[bar]' must not be read as markup
        where = f"line {line.line}: " if line.line else ""
        console.print(f"[yellow]{where}{reason}[/]" + (" (not sent)" if line.line else ""))

    try:
        stats = session.run(source, pacer=pacer, duration_s=duration, on_tick=tick, on_bad=bad)
    finally:
        if interactive:
            sys.stdout.write("\n")
        console.print("flushing…")
        remaining = session.close()
        if follower is not None:
            follower.close()
    elapsed = time.monotonic() - stats.started
    console.print(
        f"done in {elapsed:.1f}s: produced {stats.produced:,}, acked {stats.acked:,}, "
        f"failed {stats.failed:,}, invalid {stats.invalid:,}, unacknowledged {remaining:,} "
        f"({stats.produced / max(elapsed, 1e-9):,.0f} events/s)"
    )
    if stats.errors:
        console.print(f"delivery errors: {stats.errors}")
    if labels is not None and simulator is not None:
        _write_labels(labels, simulator.fault_rows())
    if stats.failed or remaining:
        raise typer.Exit(1)
    if from_file is not None and not stats.produced:
        msg = f"{from_file}: no valid line to publish ({stats.invalid:,} rejected, reasons above)"
        raise ConfigError(msg)


def _from_plant(
    path: Path, machine_id: str, line_id: str | None, machine_type: str | None
) -> tuple[str | None, str | None]:
    """The line and type of ``machine_id`` as the plant file has them (options given win)."""
    from sim import load_plant_file

    found = load_plant_file(path)
    machine = found.machine(machine_id)
    if machine is None:
        known = ", ".join(m.id for _, m in found.machines())
        msg = f"{path}: no machine {machine_id!r} (the plant file has: {known})"
        raise ConfigError(msg)
    return line_id or found.line_of(machine_id), machine_type or machine.type


def _announce(plan: Any) -> None:
    console.print(
        f"line {escape(plan.line_id)} follows plan {plan.plan_id[:8]} ({plan.solver}, "
        f"correlation {plan.correlation_id[:8]})"
    )


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _into(namespace: str, source: Iterable[Any]) -> Iterator[Any]:
    """``source``'s records addressed to the topics of ``namespace``."""
    from producers.records import Outgoing

    for item in source:
        yield Outgoing(namespace + item.topic, item.key, item.record) if isinstance(item, Outgoing) else item


def _recording(
    path: Path,
    topic_name: str,
    *,
    machine_id: str | None,
    machine_type: str | None,
    line_id: str | None,
    time_column: str,
) -> Iterator[Any]:
    """The file's records, checked now: it exists, its type is known, its header fits the topic.

    The first record is read here (a CSV header is checked when reading starts), then handed back
    in front of the rest.
    """
    from producers.file_source import FileSource
    from schemas import load_schema
    from twin.topics import topic as catalog_topic

    entry = catalog_topic(topic_name)
    if not path.is_file():
        msg = f"no such file: {path}"
        raise ConfigError(msg)
    schema = load_schema(entry.value_schema)
    records = iter(
        FileSource(
            path, entry.name, entry.key, schema.parsed,
            machine_id=machine_id, machine_type=machine_type, line_id=line_id, time_column=time_column,
        )
    )  # fmt: skip
    try:
        first = next(records, None)
    except UnicodeDecodeError as exc:
        msg = f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ConfigError(msg) from exc
    except ValueError as exc:  # FileSource's header errors name the file
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror}"
        raise ConfigError(msg) from exc
    return itertools.chain([] if first is None else [first], records)


def _write_labels(path: Path, rows: list[dict[str, Any]]) -> None:
    import json

    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    console.print(f"wrote {len(rows)} fault label(s) to {path}")
