"""What every command shares: the settings from `--data-dir`, the core, error printing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from tagport.config import Settings
from tagport.core import Tagport
from tagport.errors import TagportError
from tagport.ops.logs import configure_cli_logging

DATA_DIR: Path | None = None
err = Console(stderr=True, highlight=False, soft_wrap=True)


def settings(**overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if DATA_DIR is not None:
        values["data_dir"] = DATA_DIR
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def core(**overrides: object) -> Iterator[Tagport]:
    """The core on the chosen data dir; a TagportError ends the command with its message."""
    with reported_errors():
        chosen = settings(**overrides)
        configure_cli_logging(chosen.log_level)
        instance = Tagport(chosen)
        try:
            yield instance
        finally:
            instance.close()


@contextmanager
def reported_errors() -> Iterator[None]:
    try:
        yield
    except TagportError as exc:
        err.print(f"error: {exc.message}", markup=False)
        raise typer.Exit(1) from None


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
