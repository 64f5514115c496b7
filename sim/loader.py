"""Reading a factory layout from YAML, with one clear ``ConfigError`` when it is wrong.

>>> load_factory(DEFAULT_FACTORY_PATH).lines[0].stations[0].id
'cnc-1'
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from sim.layout import FactorySpec
from twin.errors import ConfigError
from twin.plant import read_yaml

_LEADING_PATH = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): ")

DEFAULT_FACTORY_PATH = Path(__file__).resolve().parent / "factories" / "default.yaml"


def load_factory(path: str | Path = DEFAULT_FACTORY_PATH) -> FactorySpec:
    """Load and validate a layout file; every problem is a ``ConfigError`` naming file and field."""
    source = Path(path)
    return parse_factory(read_yaml(source, "the factory layout"), source=str(source))


def parse_factory(data: object, source: str = "<factory>") -> FactorySpec:
    """Validate an already parsed layout (a dict); ``source`` names it in error messages."""
    if not isinstance(data, dict):
        msg = f"{source}: a factory layout is a mapping with a 'lines' list, got {type(data).__name__}"
        raise ConfigError(msg)
    try:
        return FactorySpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        msg = f"{source}: {describe(errors[0])}{more}"
        raise ConfigError(msg) from None


def describe(error: ErrorDetails) -> str:
    """``lines[0].stations[2].scrap_probability: Input should be less than 1 (got 1.5)``."""
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    text = error["msg"].removeprefix("Value error, ")
    # Model-level validators name the sub-field at the start of their message; fold it into the path.
    inner = _LEADING_PATH.match(text)
    if inner:
        path = f"{path}.{inner[1]}" if path else inner[1]
        text = text[inner.end() :]
    value = error.get("input")
    got = f" (got {value!r})" if isinstance(value, str | int | float | bool) else ""
    return f"{path}: {text}{got}" if path else f"{text}{got}"
