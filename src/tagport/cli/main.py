"""The `tagport` command. Thin: parses arguments, calls the core, prints results."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from tagport.cli import catalog as catalog_cli
from tagport.cli import events as events_cli
from tagport.cli import jobs as jobs_cli
from tagport.cli import projects as projects_cli
from tagport.cli import remote as remote_cli
from tagport.cli import runtime
from tagport.cli import segments as segments_cli
from tagport.cli import tokens as tokens_cli
from tagport.cli.commands import compute, demo, export, load, serve
from tagport.cli.worker import worker

app = typer.Typer(help="tagport: export the users of a user tag, GrowingIO CDP 2.9 style.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
err = Console(stderr=True)


@app.callback()
def main(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Data directory (default: TAGPORT_DATA_DIR or ./tagport-data)."
    ),
) -> None:
    runtime.DATA_DIR = data_dir


app.add_typer(catalog_cli.app, name="catalog")
app.add_typer(events_cli.app, name="events")
app.add_typer(tokens_cli.app, name="token")
app.add_typer(jobs_cli.app, name="jobs")
app.add_typer(projects_cli.app, name="project")
app.add_typer(segments_cli.app, name="segment")
app.add_typer(remote_cli.app, name="remote")
app.command()(load)
app.command()(serve)
app.command()(worker)
app.command()(export)
app.command()(compute)
app.command()(demo)


if __name__ == "__main__":  # pragma: no cover
    app()
