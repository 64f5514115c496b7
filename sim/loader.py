"""Reading a factory layout from YAML, with one clear ``ConfigError`` when it is wrong.

>>> load_factory(DEFAULT_FACTORY_PATH).lines[0].stations[0].id
'cnc-1'
"""

from __future__ import annotations

from pathlib import Path

from sim.layout import FactorySpec
from twin.errors import validated
from twin.plant import read_yaml

DEFAULT_FACTORY_PATH = Path(__file__).resolve().parent / "factories" / "default.yaml"


def load_factory(path: str | Path = DEFAULT_FACTORY_PATH) -> FactorySpec:
    """Load and validate a layout file; every problem is a ``ConfigError`` naming file and field."""
    source = Path(path)
    return parse_factory(read_yaml(source, "the factory layout"), source=str(source))


def parse_factory(data: object, source: str = "<factory>") -> FactorySpec:
    """Validate an already parsed layout (a dict); ``source`` names it in error messages."""
    return validated(FactorySpec, data, source, "factory layout")
