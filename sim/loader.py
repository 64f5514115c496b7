"""Reading a factory layout from YAML, with one clear ``ConfigError`` when it is wrong.

A packaged layout (``sim/factories/<name>.yaml``) loads by its name, any other by its path.

>>> load_factory(DEFAULT_FACTORY_PATH).lines[0].stations[0].id
'cnc-1'
>>> factory_names()
('default', 'job-shop')
>>> load_factory("job-shop").lines[0].id
'shop-1'
"""

from __future__ import annotations

from pathlib import Path

from sim.layout import FactorySpec
from twin.errors import validated
from twin.plant import read_yaml

FACTORIES_DIR = Path(__file__).resolve().parent / "factories"
DEFAULT_FACTORY_PATH = FACTORIES_DIR / "default.yaml"


def factory_names() -> tuple[str, ...]:
    """The packaged layouts, by name."""
    return tuple(sorted(p.stem for p in FACTORIES_DIR.glob("*.yaml")))


def factory_path(name_or_path: str | Path) -> Path:
    """The file of a packaged layout named ``name_or_path`` (a bare name like ``job-shop`` that is
    not a file here), else ``name_or_path`` itself."""
    source = Path(name_or_path)
    if not source.suffix and source.parent == Path() and not source.exists():
        packaged = FACTORIES_DIR / f"{source.name}.yaml"
        if packaged.is_file():
            return packaged
    return source


def load_factory(path: str | Path = DEFAULT_FACTORY_PATH) -> FactorySpec:
    """Load and validate a layout file (or a packaged one by name); every problem is a
    ``ConfigError`` naming file and field."""
    source = factory_path(path)
    return parse_factory(read_yaml(source, "the factory layout"), source=str(source))


def parse_factory(data: object, source: str = "<factory>") -> FactorySpec:
    """Validate an already parsed layout (a dict); ``source`` names it in error messages."""
    return validated(FactorySpec, data, source, "factory layout")
