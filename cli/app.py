"""Root of the ``twin`` CLI. Sub-commands live in sibling modules, one concept each."""

from __future__ import annotations

import sys
import traceback

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from cli import db as db_cmd
from cli import demo as demo_cmd
from cli import eval as eval_cmd
from cli import gateway as gateway_cmd
from cli import infra as infra_cmd
from cli import maintenance as maintenance_cmd
from cli import process as process_cmd
from cli import produce as produce_cmd
from cli import query as query_cmd
from cli import schedule as schedule_cmd
from cli import search as search_cmd
from cli import sink as sink_cmd
from cli import spark as spark_cmd
from cli import topics as topics_cmd
from cli.state import state
from twin import __version__
from twin.errors import TwinError, one_line

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
app.add_typer(schedule_cmd.app, name="schedule")
app.add_typer(maintenance_cmd.app, name="maintenance")
app.add_typer(spark_cmd.app, name="spark")
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
        _fail(_unreachable(exc) or str(exc), exc)
    except ValidationError as exc:
        _fail(_settings_error(exc), exc)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: still one line unless --debug
        _fail(_unreachable(exc) or f"unexpected {one_line(exc)} (run with --debug for the traceback)", exc)


def _unreachable(exc: BaseException) -> str | None:
    """The line naming the address and the setting when ``exc`` comes from a broker or registry nobody
    answers at: commands check both before they start; this covers one lost later."""
    from twin.clients import unreachable
    from twin.settings import Settings

    try:
        found = unreachable(exc, Settings())
    except ValidationError:
        return None
    return None if found is None else str(found)


def _fail(message: str, exc: BaseException) -> None:
    if state.debug:
        traceback.print_exception(exc)
    # The message is text, not markup: "[Errno 111]" or a "[::1]" address must print as they are.
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    sys.exit(1)
