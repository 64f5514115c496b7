"""pytest plugin: run the tests against a build of twin._avroenc made by native/buildext.py.

    python -m pytest -p native.pytest_native --native-build build/native/asan --native-sanitized ...

It puts ``BUILD/twin`` first on ``twin.__path__`` before any test imports the codec, then checks
that ``twin._avroenc`` really is that file (and, with ``--native-sanitized``, that it carries the
AddressSanitizer and UBSan runtimes) and that ``twin.codec`` uses it. Any mismatch stops the run:
a sanitizer run that silently tested the ordinary in-place build would prove nothing.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

_loaded: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("native", "the compiled Avro encoder under test")
    group.addoption("--native-build", type=Path, required=True, help="directory holding twin/_avroenc*.so")
    group.addoption(
        "--native-sanitized",
        action="store_true",
        help="require an -fsanitize=address,undefined build",
    )


def _fail(message: str) -> None:
    raise pytest.UsageError(f"native build check: {message}")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before any conftest imports the project: they may import twin.codec, which loads the
    extension once and for all."""
    options = early_config.known_args_namespace
    build = Path(options.native_build).resolve() / "twin"
    if "twin._avroenc" in sys.modules:
        _fail(f"twin._avroenc was imported before this plugin ran ({sys.modules['twin._avroenc'].__file__})")
    if not any(build.glob("_avroenc*.so")):
        _fail(f"no _avroenc*.so in {build}: build it first (native/buildext.py)")
    import twin

    twin.__path__.insert(0, str(build))
    extension = importlib.import_module("twin._avroenc")
    loaded = Path(extension.__file__ or "").resolve()
    if loaded.parent != build:
        _fail(f"twin._avroenc came from {loaded}, not from {build}")
    if options.native_sanitized:
        binary = loaded.read_bytes()
        if b"__asan_init" not in binary or b"__ubsan_handle" not in binary:
            _fail(f"{loaded} is not built with -fsanitize=address,undefined")
    from twin import codec

    if not codec.NATIVE_AVAILABLE:
        _fail(f"twin.codec does not use {loaded}: {codec.NATIVE_UNAVAILABLE}")
    _loaded.append(str(loaded))


def pytest_report_header(config: pytest.Config) -> str:
    return f"twin._avroenc under test: {_loaded[0] if _loaded else '?'}"
