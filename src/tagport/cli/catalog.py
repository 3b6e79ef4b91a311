"""`tagport catalog apply|list`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from tagport.catalog.service import entries_from_file, events_from_file, read_catalog_file
from tagport.cli import runtime

app = typer.Typer(help="Identities, attributes, tags and events with their display names.",
                  no_args_is_help=True)


@app.command("apply")
def apply(file: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Add new entries and events and update names/descriptions from a catalog JSON file."""
    spec = read_catalog_file(file)
    with runtime.core() as tp:
        report = tp.catalog.apply(entries_from_file(spec), events_from_file(spec))
    runtime.out(f"catalog applied: {len(report.added)} added, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged")


@app.command("list")
def list_() -> None:
    """Print the catalog as a table, and the event catalog as another."""
    with runtime.core() as tp:
        entries, events = tp.catalog.list(), tp.catalog.events()
    table = Table("key", "kind", "name", "type", "holds data", "description")
    for e in entries:
        table.add_row(e.key, e.kind.value, e.name, e.type_label,
                      "yes" if e.has_data else "no", e.description)
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    if events:
        event_table = Table("event", "name", "attributes", "description")
        for ev in events.values():
            attributes = ", ".join(f"{a.key} ({a.value_type.value})"
                                   for a in ev.attributes.values())
            event_table.add_row(ev.key, ev.name, attributes, ev.description)
        console.print(event_table)
