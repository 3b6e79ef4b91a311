"""`tagport remote export`: export through a tagport server's HTTP API (tagport.client)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from tagport.cli import runtime
from tagport.client import Client, TagportAPIError

app = typer.Typer(help="Talk to a tagport server over HTTP (TAGPORT_URL, TAGPORT_TOKEN).",
                  no_args_is_help=True)


@app.command("export")
def export(
    tag_key: str | None = typer.Argument(None, help="The user tag, e.g. tag_rfm."),
    segment: str | None = typer.Option(None, "--segment", help="Export a segment's members "
                                       "instead of a tag's users, e.g. seg_paid_twice."),
    project: str | None = typer.Option(None, "--project", help="The segment's project id "
                                       "(default: the default project)."),
    properties: str = typer.Option("", "--properties", "-p", help="Comma-separated keys."),
    file_format: str = typer.Option("csv", "--format", help="csv, json or parquet."),
    header: str = typer.Option("key", "--header", help="CSV header: key or name."),
    compression: str = typer.Option("none", "--compression",
                                    help="none, gzip or zstd (csv, json)."),
    charset: str = typer.Option("UTF-8", "--charset",
                                help="csv: UTF-8, UTF-8-BOM or UTF-16LE (the last two for Excel)."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="A file, or a directory for the server's file names "
        "(default: the current directory)."),
    url: str | None = typer.Option(None, "--url", help="Server URL (TAGPORT_URL)."),
    token: str | None = typer.Option(None, "--token", help="API token (TAGPORT_TOKEN)."),
) -> None:
    """Submit an export job of a tag (or a segment), wait for it, download its file(s)
    with a progress bar."""
    settings = runtime.settings()
    url, token = url or settings.url, token or settings.token
    if not url or not token:
        runtime.err.print("error: give --url and --token (or set TAGPORT_URL and TAGPORT_TOKEN)")
        raise typer.Exit(2)
    if (tag_key is None) == (segment is None):
        runtime.err.print("error: name a user tag, or a segment with --segment (not both)")
        raise typer.Exit(2)
    keys = [p.strip() for p in properties.split(",") if p.strip()]
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(),
                  console=runtime.err, transient=True) as progress:
        task = progress.add_task("submitting", total=None)
        try:
            with Client(url, token, no_worker_grace=settings.no_worker_grace) as client:
                options: dict[str, Any] = dict(
                    on_stage=lambda job: _show_stage(progress, task, job),
                    on_progress=lambda done, total: progress.update(
                        task, description="downloading", completed=done, total=total),
                    compression=compression, charset=charset)
                if segment is not None:
                    paths = client.export_segment(segment, keys, file_format, header, output,
                                                  project=project, **options)
                else:
                    assert tag_key is not None
                    paths = client.export_tag(tag_key, keys, file_format, header, output,
                                              **options)
        except TagportAPIError as exc:
            progress.stop()
            runtime.err.print(f"error: {exc.code}: {exc.message}", markup=False)
            raise typer.Exit(1) from None
    for path in paths:
        runtime.out(f"{path.stat().st_size} bytes written to {path}")


def _show_stage(progress: Progress, task: TaskID, job: dict[str, Any]) -> None:
    progress.update(task, description=f"job {job['id']}: {job['stage']}")
