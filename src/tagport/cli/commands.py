"""`tagport load | serve | export | demo`."""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from tagport import control
from tagport import demo as demo_data
from tagport.catalog.service import entries_from_file, events_from_file, read_catalog_file
from tagport.cli import runtime
from tagport.core import Tagport
from tagport.engines.base import Engine, LoadReport
from tagport.errors import Conflict, NotFound, StoreBusy, TagportError
from tagport.exports.spec import ExportRequest
from tagport.jobs.models import ExportJob, JobStage
from tagport.jobs.runner import Turn, worker_id
from tagport.ops.logs import logging_config
from tagport.results import StoredObject

MAX_REJECTS_SHOWN = 20


def load(
    file: Path = typer.Argument(..., help="Users as .csv, .jsonl or .parquet."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="Apply the valid records; write rejects to a file."),
    rejects: Path | None = typer.Option(None, "--rejects",
                                           help="Where rejects go (default FILE.rejects.csv)."),
) -> None:
    """Load users with identity resolution, all or nothing unless --skip-invalid."""
    rejects_path = rejects or (file.with_name(file.stem + ".rejects.csv") if skip_invalid else None)
    with runtime.core() as tp:
        try:
            report = tp.profiles.load(file, skip_invalid=skip_invalid, rejects_path=rejects_path)
            runtime.out(f"loaded {file} into {tp.settings.profile_db_path}")
        except StoreBusy as busy:
            server, report = control.hand_load_to_server(tp.settings, file, skip_invalid,
                                                         rejects_path, busy)
            runtime.out(f"the running server at {server.url} (pid {server.pid}) holds the "
                        f"profile store; the load of {file} was handed to it")
    _print_load_report(report, rejects_path)
    if not report.applied:
        raise typer.Exit(1)


def _print_load_report(report: LoadReport, rejects_path: Path | None) -> None:
    for reject in report.rejects[:MAX_REJECTS_SHOWN]:
        runtime.err.print(f"rejected: {reject}", markup=False)
    if len(report.rejects) > MAX_REJECTS_SHOWN:
        runtime.err.print(f"... and {len(report.rejects) - MAX_REJECTS_SHOWN} more rejects")
    runtime.out(f"inserted={report.inserted} updated={report.updated} rejected={report.rejected}")
    if not report.applied:
        runtime.err.print("nothing was applied: fix the rejected records, "
                          "or use --skip-invalid to apply the valid ones")
    elif report.rejects and rejects_path:
        runtime.out(f"rejected records written to {rejects_path}")


def serve(
    host: str | None = typer.Option(None, help="Listen address (TAGPORT_HOST)."),
    port: int | None = typer.Option(None, help="Port (TAGPORT_PORT)."),
    workers: int | None = typer.Option(None, help="Export worker threads (TAGPORT_WORKERS)."),
    worker: bool = typer.Option(True, "--worker/--no-worker",
                                help="Run export workers in this process (default), or none: "
                                "an API-only node, with `tagport worker` processes."),
) -> None:
    """Run the HTTP API with its export workers (or, with --no-worker, the API only)."""
    import uvicorn

    from tagport.api.app import create_app

    with runtime.core(host=host, port=port, workers=workers) as tp:
        s = tp.settings
        url_host = "127.0.0.1" if s.host in ("0.0.0.0", "::") else s.host
        if worker:
            _ = tp.engine  # open the single DuckDB writer now, so a busy store fails clearly
            app = create_app(tp, public_url=f"http://{url_host}:{s.port}")
        else:  # no server.json: loads and CLI exports are not handed here
            tp.open_engine_per_use()  # profile lookups must not lock the store
            app = create_app(tp, run_workers=False)
        runtime.out(f"tagport serving {s.resolved_data_dir} on http://{url_host}:{s.port}"
                    + ("" if worker else " (API only: exports run in `tagport worker`)"))
        try:  # uvicorn ends by raising the stop signal again (SIGINT: KeyboardInterrupt)
            uvicorn.run(app, host=s.host, port=s.port, log_level=s.log_level,
                        access_log=s.access_log,
                        log_config=logging_config(s.log_format, s.log_level))
        finally:
            if app.state.exports_abandoned:  # handed back, but their threads are in DuckDB:
                runtime.out("tagport serve: stopped; unfinished exports were handed back")
                os._exit(0)  # tearing the engine down under them would abort


def export(
    tag_key: str = typer.Argument(..., help="The user tag, e.g. tag_rfm."),
    properties: str = typer.Option("", "--properties", "-p", help="Comma-separated keys."),
    file_format: str = typer.Option("csv", "--format", help="csv, json or parquet."),
    header: str = typer.Option("key", "--header", help="CSV header: key or name."),
    compression: str = typer.Option("none", "--compression",
                                    help="none, gzip or zstd (csv, json)."),
    charset: str = typer.Option("UTF-8", "--charset",
                                help="csv: UTF-8, UTF-8-BOM or UTF-16LE (the last two for Excel)."),
    output: Path | None = typer.Option(None, "-o", "--output",
                                          help="Where to put the file (default: its own name)."),
) -> None:
    """Export a tag's users to a file, here or through the running server."""
    keys = [p.strip() for p in properties.split(",") if p.strip()]
    request = ExportRequest(tag_key, keys, file_format, header, compression, charset)
    with runtime.core() as tp:
        job = _run_export_job(tp, request)
        if job.stage is JobStage.ERROR:
            raise TagportError(f"export failed: {job.error_code}: {job.error_message}")
        _, local = tp.jobs.file_for(job.files[0], token_id=None)
        dest = output or Path(local.name)
        if isinstance(local, StoredObject):  # in an object store: download it
            tp.results.fetch(local, dest)
        else:
            _place(local, dest)
    runtime.out(f"{job.row_count} rows written to {dest}")


def _run_export_job(tp: Tagport, request: ExportRequest) -> ExportJob:
    """Submit a job; run it in this process, or wait for the server that owns the store."""
    engine = engine_or_server(tp, "export")
    return run_job(tp, tp.jobs.submit(request, token_id=None), engine)


def engine_or_server(tp: Tagport, what: str) -> Engine | None:
    """The engine, for this process to run a job on; None when the running server holds
    the profile store (its workers run the job; said on stderr)."""
    try:
        return tp.engine
    except StoreBusy as busy:
        server = control.running_server(tp.settings)
        if server is None:
            raise StoreBusy(control.store_held_advice(tp.settings, busy.message, what)) from None
        runtime.err.print(f"the running server at {server.url} holds the profile store; "
                          f"the {what} runs there")
        return None


def run_job(tp: Tagport, job: ExportJob, engine: Engine | None) -> ExportJob:
    """Run `job` here, attempt after attempt (the workers' backoff and max attempts),
    until it ends; with no engine here, wait for the server's workers while it runs."""
    worker = worker_id("cli")
    with Console(stderr=True).status(f"job {job.id}: {job.stage.value}") as status:
        while not (job := tp.jobs.get(job.id)).stage.is_final:
            status.update(f"job {job.id}: {job.stage.value}")
            if engine is not None:
                if tp.jobs.runner.run_next(worker, engine, job_id=job.id) is Turn.RAN:
                    continue
            elif control.running_server(tp.settings) is None:
                raise TagportError(f"job {job.id} is {job.stage.value}, and the server that "
                                   "held the profile store has stopped: start it again (it "
                                   "runs the job), or run the command again",
                                   code="NO_WORKER")
            time.sleep(0.2)  # a retry's time has not come, or the server's workers run it
    return job


def _demo_data(tp: Tagport, demo_dir: Path, users: int, events: int) -> None:
    runtime.out(f"generating {users} demo users and {events} events over "
                f"{demo_data.EVENT_DAYS} days ...")
    report = tp.profiles.load(demo_data.write_users(demo_dir / "users.parquet", users))
    runtime.out(f"loaded demo users: inserted={report.inserted}")
    loaded = tp.events.load(demo_data.write_events(demo_dir / "events.parquet", users, events))
    runtime.out(f"loaded demo events: appended={loaded.appended}")
    job = run_job(tp, tp.tag_computes.trigger(), tp.engine)
    runtime.out(f"computed {len(job.properties)} tags from the events ({job.stage.value}): "
                + ", ".join(job.properties))


def compute(
    keys: list[str] | None = typer.Argument(
        None, help="Computed tags to compute (default: all, in dependency order)."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="The compute date, YYYY-MM-DD (default: today, in "
        "TAGPORT_TIMEZONE); `lastDays` windows end the day before it."),
) -> None:
    """Compute tags from the events, here or through the running server."""
    day = _date(as_of) if as_of else None
    with runtime.core() as tp:
        engine = engine_or_server(tp, "computation")
        job = run_job(tp, _trigger(tp, keys or None, day, engine), engine)
        detectors = tp.tag_computes.detectors_of(job.properties)
    for key in job.properties:
        if (state := detectors.get(key, {})).get("stage") == "FINISH":
            runtime.out(f"{key}: {state['totalUsers']} users (as of {job.as_of})")
    if job.stage is JobStage.ERROR:
        with runtime.reported_errors():
            raise TagportError(f"computation failed: {job.error_code}: {job.error_message}")


def _trigger(tp: Tagport, keys: list[str] | None, day: date | None,
             engine: Engine | None) -> ExportJob:
    """Queue the computation. With the engine here (no server), a computation of the same
    tags left unfinished by a process that is gone (killed, or its disk filled before it
    could record the end) is run to its end first, instead of refusing for ever."""
    if engine is not None:
        tp.jobs.runner.release_orphans()  # a dead process's claim: back in the queue
    try:
        return tp.tag_computes.trigger(keys, as_of=day)
    except Conflict as busy:
        found = re.search(r"\(job (\w+)\)", busy.message)
        if engine is None or busy.code != "COMPUTE_IN_PROGRESS" or not found:
            raise
    runtime.err.print(f"job {found.group(1)}, an unfinished computation of these tags, "
                      "runs first", markup=False)
    run_job(tp, tp.jobs.get(found.group(1)), engine)
    return tp.tag_computes.trigger(keys, as_of=day)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        runtime.err.print(f"error: --as-of: {text!r} is not a date (YYYY-MM-DD)", markup=False)
        raise typer.Exit(2) from None


def _place(src: Path, dest: Path) -> None:
    """Link the result file to `dest` when possible (no copy), else copy it."""
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def demo(
    users: int = typer.Option(100_000, help="How many synthetic users."),
    events: int | None = typer.Option(
        None, help="How many behavioural events over 90 days (default: 50 per user)."),
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Start the server after."),
    host: str | None = typer.Option(None, help="Listen address for --serve."),
    port: int | None = typer.Option(None, help="Port for --serve."),
) -> None:
    """Create a synthetic CDP (catalog, users, their events, tags computed from them, a
    token) and print a curl walk-through."""
    with runtime.core(host=host, port=port) as tp:
        demo_dir = tp.settings.resolved_data_dir / "demo"
        demo_dir.mkdir(exist_ok=True)
        spec = read_catalog_file(demo_data.write_catalog(demo_dir / "catalog.json"))
        tp.catalog.apply(entries_from_file(spec), events_from_file(spec))
        if tp.engine.user_count() == 0:
            _demo_data(tp, demo_dir, users, events if events is not None else 50 * users)
        else:
            runtime.out(f"the data dir already holds {tp.engine.user_count()} users; kept them")
        try:
            tp.tokens.revoke("demo")
        except NotFound:
            pass
        token = tp.tokens.create("demo")
        s = tp.settings
        runtime.out(demo_data.curl_walkthrough(f"http://{s.host}:{s.port}", token))
    if serve_after:
        serve(host=host, port=port, workers=None, worker=True)
