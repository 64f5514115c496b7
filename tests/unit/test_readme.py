"""The README's settings table stays in step with the settings object."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from twin.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def env_names(model: type[BaseModel], prefix: str = "TWIN_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names.extend(env_names(ann, f"{prefix}{name.upper()}__"))
        elif name != "ci":  # read from CI, not TWIN_CI
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_documented() -> None:
    missing = [n for n in env_names(Settings) if f"`{n}`" not in README]
    assert missing == []


def test_readme_gives_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README
