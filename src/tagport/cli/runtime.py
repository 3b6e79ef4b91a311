"""What every command shares: the settings from `--data-dir`, the core, error printing."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from tagport.config import Settings
from tagport.core import Tagport
from tagport.errors import (
    EngineUnavailable,
    MetadataUnavailable,
    StorageError,
    StorageFull,
    StorageUnwritable,
    TagportError,
    Unavailable,
    fault_of,
)
from tagport.ops.logs import configure_cli_logging

DATA_DIR: Path | None = None
err = Console(stderr=True, highlight=False, soft_wrap=True)
_settings: Settings | None = None  # the command's, once made: for the advice on a fault


def settings(**overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if DATA_DIR is not None:
        values["data_dir"] = DATA_DIR
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def core(**overrides: object) -> Iterator[Tagport]:
    """The core on the chosen data dir; a TagportError, or a fault of a store (full,
    read-only, unreachable), ends the command with one line saying what to do."""
    global _settings
    with reported_errors():
        chosen = settings(**overrides)
        _settings = chosen
        configure_cli_logging(chosen.log_level)
        instance = Tagport(chosen)
        try:
            yield instance
        finally:
            instance.close()


# the errors of a store that is down, full or read-only: their line starts with the code
FAULTS = (Unavailable, StorageError, StorageFull, StorageUnwritable)


def _debug() -> bool:
    level = _settings.log_level if _settings else os.environ.get("TAGPORT_LOG_LEVEL", "")
    return level.lower() == "debug"


@contextmanager
def reported_errors() -> Iterator[None]:
    """TagportErrors and the stores' faults end the command with `error: <what> <advice>`
    and exit 1; the traceback only with TAGPORT_LOG_LEVEL=debug."""
    try:
        yield
    except TagportError as exc:
        code = f"{exc.code}: " if isinstance(exc, FAULTS) else ""
        err.print(f"error: {code}{exc.message}{advice(exc)}", markup=False)
        raise typer.Exit(1) from None
    except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except Exception as exc:
        fault = _read_only(fault_of(exc))
        if _debug():
            raise
        if fault is None:
            err.print(f"error: internal error: {type(exc).__name__}: {exc} (run with "
                      "TAGPORT_LOG_LEVEL=debug for the traceback)", markup=False)
        else:
            err.print(f"error: {fault.code}: {fault.message}{advice(fault)}", markup=False)
        raise typer.Exit(1) from None


def _read_only(fault: TagportError | None) -> TagportError | None:
    """A store in the data dir that fails because the data dir is on a read-only or full
    file system (SQLite says only "unable to open database file" or "disk I/O error"):
    that, as the cause."""
    if _settings is None or not isinstance(fault, MetadataUnavailable | EngineUnavailable):
        return fault
    where = _settings.resolved_data_dir
    try:
        fs = os.statvfs(where)
    except OSError:
        return fault
    if fs.f_flag & os.ST_RDONLY:
        return StorageUnwritable(f"the data dir {where} is on a read-only file system "
                                 f"({fault.message})")
    if fs.f_bavail * fs.f_frsize < FULL_BELOW:
        return StorageFull(f"the disk of the data dir {where} is full "
                           f"({fs.f_bavail * fs.f_frsize} bytes free; {fault.message})")
    return fault


FULL_BELOW = 64 * 1024  # bytes free under which a data dir's failing store is a full disk


def advice(exc: TagportError) -> str:
    """What to do about a fault, after its message ('' for other errors, whose messages
    say it themselves)."""
    s = _settings
    if isinstance(exc, MetadataUnavailable):
        url = make_url(s.metadata_url).render_as_string(hide_password=True) if s else "?"
        return (f" (metadata store {url}): check TAGPORT_DATABASE_URL, its user and "
                "password, and that the database server runs; then run the command again")
    if isinstance(exc, EngineUnavailable):
        where = s.profile_db_path if s else "the profile store"
        return (f" ({where}): the file is damaged or unreadable, or not a DuckDB file: "
                "restore it from a backup, or move it aside to start an empty store; "
                "TAGPORT_LOG_LEVEL=debug shows the full error")
    if isinstance(exc, StorageFull) and "free space" not in exc.message:
        where = s.resolved_data_dir if s else "the data dir"
        return (f" (data dir {where}): free space on that disk, or set TAGPORT_DATA_DIR / "
                "TAGPORT_RESULT_DIR to a larger one, and run the command again")
    if type(exc) is StorageError:
        return (": check that TAGPORT_DATA_DIR and TAGPORT_RESULT_DIR name directories this "
                "user can write, and run the command again")
    if isinstance(exc, StorageUnwritable):
        where = s.resolved_data_dir if s else "the data dir"
        return (f" (data dir {where}): remount it read-write or give this user write "
                "access, and run the command again")
    return ""


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
