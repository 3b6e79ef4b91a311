"""`tagport catalog apply|list`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from tagport.catalog.service import entries_from_file, read_catalog_file
from tagport.cli import runtime

app = typer.Typer(help="Identities, attributes and tags with their display names.",
                  no_args_is_help=True)


@app.command("apply")
def apply(file: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Add new entries and update names/descriptions from a catalog JSON file."""
    with runtime.core() as tp:
        report = tp.catalog.apply(entries_from_file(read_catalog_file(file)))
    runtime.out(f"catalog applied: {len(report.added)} added, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged")


@app.command("list")
def list_() -> None:
    """Print the catalog as a table."""
    with runtime.core() as tp:
        entries = tp.catalog.list()
    table = Table("key", "kind", "name", "type", "holds data", "description")
    for e in entries:
        table.add_row(e.key, e.kind.value, e.name, e.type_label,
                      "yes" if e.has_data else "no", e.description)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
