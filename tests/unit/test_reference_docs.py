"""The reference under docs/reference/ names every setting, CLI command and route, and
is up to date with the code (regenerate with docs/generate_reference.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tagport.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def generator():
    spec = importlib.util.spec_from_file_location("generate_reference",
                                                  DOCS / "generate_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_is_in_the_settings_reference():
    text = (DOCS / "reference" / "settings.md").read_text(encoding="utf-8")
    missing = [f"TAGPORT_{n.upper()}" for n in Settings.model_fields
               if f"`TAGPORT_{n.upper()}`" not in text]
    assert missing == []


def test_every_cli_command_is_in_the_cli_reference():
    text = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    paths = [path for path, _ in generator().cli_commands()]
    assert len(paths) >= 10
    assert [p for p in paths if f"## `{p}`" not in text] == []


def test_every_route_is_in_the_api_reference():
    text = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    routes = generator().api_routes()
    assert [(m, p) for m, p, _ in routes if f"| {m} | `{p}` |" not in text] == []


def test_the_reference_is_up_to_date_with_the_code():
    for name, text in generator().render().items():
        assert (DOCS / "reference" / name).read_text(encoding="utf-8") == text, (
            f"docs/reference/{name} is stale: run docs/generate_reference.py")
