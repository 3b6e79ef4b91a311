"""`tagport project list|create`."""

from __future__ import annotations

import typer

from tagport.cli import runtime

app = typer.Typer(help="Projects (users, identities, attributes and tags are shared by all).",
                  no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """Print `id name`, one project a line, oldest (the default project) first."""
    with runtime.core() as tp:
        projects = tp.projects.list()
    for project in projects:
        runtime.out(project.line)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="The project's name: not empty, not taken."),
) -> None:
    """Create a project called NAME; prints its `id name` line."""
    with runtime.core() as tp:
        project = tp.projects.create(name)
    runtime.out(project.line)
