"""Root of the ``twin`` CLI. Sub-commands live in sibling modules, one concept each."""

from __future__ import annotations

import sys
import traceback

import typer
from pydantic import ValidationError
from rich.console import Console

from twin import __version__
from twin.cli import db as db_cmd
from twin.cli import demo as demo_cmd
from twin.cli import eval as eval_cmd
from twin.cli import gateway as gateway_cmd
from twin.cli import infra as infra_cmd
from twin.cli import process as process_cmd
from twin.cli import produce as produce_cmd
from twin.cli import query as query_cmd
from twin.cli import search as search_cmd
from twin.cli import sink as sink_cmd
from twin.cli import topics as topics_cmd
from twin.cli.state import state
from twin.errors import TwinError

err_console = Console(stderr=True, highlight=False)

app = typer.Typer(
    name="twin",
    help=(
        "Factory Twin: stream a factory line through Kafka into anomalies, alarms, OEE, "
        "history and a live view."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(infra_cmd.app, name="infra")
app.add_typer(topics_cmd.app, name="topics")
app.add_typer(eval_cmd.app, name="eval")
app.add_typer(sink_cmd.app, name="sink")
app.add_typer(db_cmd.app, name="db")
app.add_typer(query_cmd.app, name="query")
app.command("demo")(demo_cmd.demo)
app.command("produce")(produce_cmd.produce)
app.command("process")(process_cmd.process)
app.command("search")(search_cmd.search)
app.command("gateway")(gateway_cmd.gateway)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"factory-twin {__version__}")
        raise typer.Exit


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Factory Twin command line."""
    state.debug = debug


def _settings_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = "__".join(str(p) for p in first.get("loc", ()))
    where = f"TWIN_{loc.upper()}" if loc else "settings"
    return f"invalid setting {where}: {first.get('msg', 'invalid value')}"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: TwinError and bad settings become one line and exit code 1."""
    try:
        app(args=argv, prog_name="twin")
    except TwinError as exc:
        _fail(str(exc), exc)
    except ValidationError as exc:
        _fail(_settings_error(exc), exc)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: still one line unless --debug
        _fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", exc)


def _fail(message: str, exc: BaseException) -> None:
    if state.debug:
        traceback.print_exception(exc)
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    sys.exit(1)
