"""Saved RUL models: one JSON file per machine type in a folder (``<machine_type>.json``).

The shipped folder, ``processors/maintenance/models/``, holds the models trained on the simulator's
run-to-failure histories of its default line (``twin maintenance train``); a plant trains its own
from its histories and points ``TWIN_PROCESSORS__RUL_MODELS`` at them. A file is plain JSON
(``RULEstimator.to_dict``): never unpickled, refused with one line when its format or version is not
this release's.
"""

from __future__ import annotations

import json
from pathlib import Path

from processors.maintenance.rul import RULEstimator
from twin.errors import ConfigError, SnapshotError

SHIPPED = Path(__file__).with_name("models")


def save_model(model: RULEstimator, path: Path) -> None:
    """Write ``model`` as JSON to ``path`` (its folder is made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")


def load_model(path: Path) -> RULEstimator:
    """The model saved at ``path``; a one-line ``ConfigError`` for a missing, damaged or foreign file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"no RUL model at {path}"
        raise ConfigError(msg) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{path}: not a RUL model ({exc})"
        raise ConfigError(msg) from None
    try:
        return RULEstimator.from_dict(doc)
    except SnapshotError as exc:
        msg = f"{path}: {exc}"
        raise ConfigError(msg) from None


def load_models(folder: Path | None = None) -> dict[str, RULEstimator]:
    """Machine type -> model, from every ``<machine_type>.json`` in ``folder`` (default: shipped)."""
    folder = SHIPPED if folder is None else folder
    if not folder.is_dir():
        msg = f"no RUL model folder at {folder}"
        raise ConfigError(msg)
    return {p.stem: load_model(p) for p in sorted(folder.glob("*.json"))}
