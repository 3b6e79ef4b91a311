"""`tagport token create|list|revoke`."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from tagport.cli import runtime

app = typer.Typer(help="API tokens (stored only as SHA-256 hashes).", no_args_is_help=True)


@app.command("create")
def create(
    name: str,
    scope: list[str] = typer.Option(["export"], "--scope",
                                    help="export (default) or admin; repeat for both."),
) -> None:
    """Create a token; the token is the last line printed."""
    with runtime.core() as tp:
        token = tp.tokens.create(name, tuple(scope))
    runtime.out(f"token {name!r} created; keep it, it is not shown again:")
    runtime.out(token)


@app.command("list")
def list_() -> None:
    """List tokens (names and dates; never the tokens)."""
    with runtime.core() as tp:
        tokens = tp.tokens.list()
    table = Table("name", "scopes", "created", "revoked")
    for t in tokens:
        revoked = t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else ""
        table.add_row(t.name, ",".join(sorted(t.scopes)),
                      t.created_at.isoformat(timespec="seconds"), revoked)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command("revoke")
def revoke(name: str) -> None:
    """Revoke the active token called NAME."""
    with runtime.core() as tp:
        tp.tokens.revoke(name)
    runtime.out(f"token {name!r} revoked")
