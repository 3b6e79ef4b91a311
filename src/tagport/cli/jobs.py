"""`tagport jobs list|show`: what the export jobs are doing, from the metadata store."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from tagport.cli import runtime
from tagport.jobs.models import ExportJob

app = typer.Typer(help="Export jobs: list them, show one.", no_args_is_help=True)


def _duration(job: ExportJob) -> str:
    if job.started_at is None or job.finished_at is None:
        return ""
    return f"{(job.finished_at - job.started_at).total_seconds():.1f}s"


@app.command("list")
def list_(
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=2**63 - 1,  # SQL BIGINT
                              help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """The newest jobs: id, name, stage, tag, format, rows, bytes, duration, error."""
    with runtime.core() as tp:
        jobs = tp.jobs.list(limit)
    if as_json:
        for job in jobs:
            runtime.out(json.dumps(tp.jobs.document(job), ensure_ascii=False))
        return
    table = Table("id", "name", "stage", "tag", "format", "rows", "bytes", "created",
                  "duration", "error")
    for j in jobs:
        table.add_row(j.id, j.name, j.stage.value, j.tag_key, j.file_format or j.kind,
                      "" if j.row_count is None else str(j.row_count),
                      "" if j.byte_count is None else str(j.byte_count),
                      j.created_at.astimezone().isoformat(timespec="seconds"), _duration(j),
                      f"{j.error_code}: {j.error_message}" if j.error_code else "")
    Console(width=None if sys.stdout.isatty() else 250).print(table)


@app.command("show")
def show(job_id: str = typer.Argument(..., help="The job's id, e.g. kqQeWeGr.")) -> None:
    """One job as JSON: its result document, properties, attempts and files on disk."""
    with runtime.core() as tp:
        job = tp.jobs.get(job_id)
        doc = tp.jobs.document(job)
        doc.update(properties=job.properties, csvHeaderType=job.header_type,
                   attempts=job.attempts, tokenId=job.token_id,
                   files=[tp.results.location(job.name, job.attempts, p.rsplit("/", 1)[-1])
                          for p in job.files])
    runtime.out(json.dumps(doc, ensure_ascii=False, indent=2))
