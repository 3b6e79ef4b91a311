"""`tagport segment apply|list`: segments of a project, defined in a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tagport.catalog.segments import CreatedBy
from tagport.cli import runtime
from tagport.cli.commands import engine_or_server, run_job
from tagport.errors import InvalidInput, TagportError
from tagport.jobs.models import JobStage

app = typer.Typer(help="Segments: saved groups of users, one project each.",
                  no_args_is_help=True)
PROJECT = typer.Option(None, "--project", help="The project's id (default: the default "
                       "project, the first of `tagport project list`).")


def read_segments_file(path: Path) -> list[dict[str, Any]]:
    """A list of segment documents, or `{"segments": [...]}`."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}"
                           ) from None
    segments = doc.get("segments") if isinstance(doc, dict) else doc
    if not isinstance(segments, list) or not all(isinstance(s, dict) for s in segments):
        raise InvalidInput(f'{path}: a list of segments, or {{"segments": [...]}}')
    return segments


@app.command("apply")
def apply(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="A JSON list of segments (key, name, definition, ...)."),
    project: str | None = PROJECT,
) -> None:
    """Add the file's new segments and change the others, then compute the DIRECT ones
    that are new or changed (here, or through the running server)."""
    docs = read_segments_file(file)
    with runtime.core() as tp:
        project_id = project or tp.projects.list()[0].id
        changed = apply_segments(tp, project_id, docs, file)
        if changed:
            engine = engine_or_server(tp, "computation")
            job = run_job(tp, tp.tag_computes.trigger(changed), engine)
            detectors = tp.tag_computes.detectors_of(changed)
            for key in changed:
                if (state := detectors[key])["stage"] == "FINISH":
                    runtime.out(f"{key}: {state['totalUsers']} members")
            if job.stage is JobStage.ERROR:
                with runtime.reported_errors():
                    raise TagportError(f"computation failed: {job.error_code}: "
                                       f"{job.error_message}")


def apply_segments(tp: Any, project_id: str, docs: list[dict[str, Any]], file: Path
                   ) -> list[str]:
    """Create or replace each segment (each checked as the admin routes check it); the
    keys of the DIRECT segments to compute."""
    existing = {s.key: s for s in tp.segments.list(project_id)}
    to_compute = []
    for index, doc in enumerate(docs):
        key = doc.get("key")
        try:
            if key in existing:
                old = existing[key]
                new = tp.segments.replace(project_id, key, doc, None, compute=False)
                moved = (new.definition, new.created_by) != (old.definition, old.created_by)
                runtime.out(f"{key}: {'updated' if _fields(new) != _fields(old) else 'unchanged'}")
            else:
                new = tp.segments.create(project_id, doc, None, compute=False)
                moved = True
                runtime.out(f"{key}: added")
        except TagportError as exc:
            raise InvalidInput(f"{file}: segments[{index}] ({key}): {exc.message}") from None
        if moved and new.created_by is CreatedBy.DIRECT:
            to_compute.append(new.key)
    return to_compute


def _fields(segment: Any) -> tuple[Any, ...]:
    return (segment.name, segment.description, segment.scheduler, segment.created_by,
            segment.definition)


@app.command("list")
def list_(project: str | None = PROJECT) -> None:
    """Print `key name createdBy scheduler stage members`, one segment a line."""
    with runtime.core() as tp:
        project_id = project or tp.projects.list()[0].id
        documents = tp.segments.documents(tp.segments.list(project_id))
    for doc in documents:
        detector = doc["detector"]
        runtime.out(f"{doc['key']} {doc['name']} {doc['createdBy']} {doc['scheduler']} "
                    f"{detector['stage']} {detector['totalUsers']}")
