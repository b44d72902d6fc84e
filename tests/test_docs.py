"""Every websocket command, its fields, and every config key are documented (a new one fails here)."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from hub.config import Config
from hub.core.commands import COMMANDS

from .conftest import ROOT

PROTOCOL = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")


def _models(annotation: object) -> list[type[BaseModel]]:
    found = []
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            found.append(arg)
        found += [a for a in typing.get_args(arg) if isinstance(a, type) and issubclass(a, BaseModel)]
    return found


def _config_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        for sub in _models(field.annotation):
            keys += _config_keys(sub, f"{prefix}{name}.")
    return keys


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_and_fields_documented(name: str) -> None:
    assert f"`{name}`" in PROTOCOL, f"command {name} is not in docs/protocol.md"
    for field in COMMANDS[name].model.model_fields:
        assert f"`{field}`" in PROTOCOL, f"field {field} of {name} is not in docs/protocol.md"


@pytest.mark.parametrize("key", _config_keys())
def test_config_key_documented(key: str) -> None:
    section, _, leaf = key.rpartition(".")
    if not section:
        assert f"[{key}]" in CONFIGURATION, f"section [{key}] is not in docs/configuration.md"
        return
    assert f"[{section}]" in CONFIGURATION, f"section [{section}] is not in docs/configuration.md"
    assert f"`{leaf}`" in CONFIGURATION, f"config key {key} is not in docs/configuration.md"
