"""``twin demo``: the main job, as a script of named steps (``STEPS``), one small function each."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import typer

from cli.demo.gateway import report_gateway, serve_live_view, start_gateway
from cli.demo.hints import closing_hints
from cli.demo.line import stream_line
from cli.demo.readback import read_back, show_history
from cli.demo.run import DemoRun, Options
from cli.demo.stack import bring_up_stack, create_topics, migrate_history, show_status
from cli.demo.workers import start_sinks, start_worker, stop_sinks, wait_processed, wait_written
from cli.infra import console
from twin.settings import Settings


@dataclass(frozen=True)
class Step:
    title: str | None  # opens a numbered section (formatted with the options); None: goes on in one
    run: Callable[[DemoRun], None]


STEPS: tuple[Step, ...] = (
    Step("local servers", bring_up_stack),
    Step("topics and schemas", create_topics),
    Step("history stores and sinks", migrate_history),
    Step(None, start_sinks),
    Step("XR gateway (live WebXR view)", start_gateway),
    Step("processing worker", start_worker),
    Step("the simulated line at {speed:g}x for {duration:g}s", stream_line),
    Step(None, wait_processed),
    Step(None, wait_written),
    Step(None, report_gateway),
    Step(None, stop_sinks),
    Step("read back", read_back),
    Step(None, show_history),
    Step("status", show_status),
    Step(None, closing_hints),
)


def demo(
    duration: float = typer.Option(20.0, "--duration", min=1, help="Seconds to stream the simulated line."),
    speed: float = typer.Option(120.0, "--speed", min=0.1, help="Simulated seconds per wall second."),
    seed: int = typer.Option(42, "--seed", help="Simulator seed."),
    keep_running: bool = typer.Option(
        True, "--keep-running/--stop", help="Leave the servers running afterwards (stop: `twin infra down`)."
    ),
    gateway_port: int | None = typer.Option(
        None,
        "--gateway-port",
        help="Port of the live WebXR view. Default: TWIN_GATEWAY__PORT, else a free one.",
    ),
    serve: bool | None = typer.Option(
        None,
        "--serve/--no-serve",
        help="Keep serving the WebXR view after the run until Ctrl-C. Default: when run in a terminal.",
    ),
) -> None:
    """Bring up the local stack, stream the simulated line into Kafka, read it back, show the status."""
    options = Options(duration=duration, speed=speed, seed=seed, gateway_port=gateway_port)
    run = DemoRun(Settings(), options)
    with run:  # however it ends (error, Ctrl-C, SIGTERM), no child process is left running
        section = 0
        for step in STEPS:
            if step.title is not None:
                section += 1
                console.rule(f"{section}. {step.title.format(**vars(options))}")
            step.run(run)
        if serve if serve is not None else sys.stdin.isatty():
            serve_live_view(run)
    if keep_running:
        console.print("Servers keep running; stop them with `twin infra down`.")
    else:
        run.infra.down()
