"""`tagport events load`."""

from __future__ import annotations

from pathlib import Path

import typer

from tagport import control
from tagport.cli import runtime
from tagport.engines.base import EventLoadReport
from tagport.errors import StoreBusy

app = typer.Typer(help="Behavioural events: who did what, when.", no_args_is_help=True)

MAX_REJECTS_SHOWN = 20


@app.command("load")
def load(
    file: Path = typer.Argument(..., help="Events as .csv, .jsonl or .parquet."),
    known_users_only: bool = typer.Option(
        False, "--known-users-only",
        help="Reject the events of identities no user holds, instead of creating users."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="Apply the valid events; write rejects to a file."),
    rejects: Path | None = typer.Option(None, "--rejects",
                                        help="Where rejects go (default FILE.rejects.csv)."),
) -> None:
    """Load events, resolved to users by their identities, all or nothing unless
    --skip-invalid; events whose id is stored already are skipped."""
    rejects_path = rejects or (file.with_name(file.stem + ".rejects.csv") if skip_invalid else None)
    with runtime.core() as tp:
        try:
            report = tp.events.load(file, known_users_only=known_users_only,
                                    skip_invalid=skip_invalid, rejects_path=rejects_path)
            runtime.out(f"loaded the events of {file}")
        except StoreBusy as busy:
            server, report = control.hand_event_load_to_server(
                tp.settings, file, known_users_only=known_users_only,
                skip_invalid=skip_invalid, rejects_path=rejects_path, busy=busy)
            runtime.out(f"the running server at {server.url} (pid {server.pid}) holds the "
                        f"profile store; the load of {file} was handed to it")
    _print_report(report, rejects_path)
    if not report.applied:
        raise typer.Exit(1)


def _print_report(report: EventLoadReport, rejects_path: Path | None) -> None:
    for reject in report.rejects[:MAX_REJECTS_SHOWN]:
        runtime.err.print(f"rejected: {reject}", markup=False)
    if len(report.rejects) > MAX_REJECTS_SHOWN:
        runtime.err.print(f"... and {len(report.rejects) - MAX_REJECTS_SHOWN} more rejects")
    runtime.out(f"appended={report.appended} duplicates={report.duplicates} "
                f"users_created={report.users_created} rejected={report.rejected}")
    if not report.applied:
        runtime.err.print("nothing was applied: fix the rejected events, "
                          "or use --skip-invalid to apply the valid ones")
    elif report.rejects and rejects_path:
        runtime.out(f"rejected events written to {rejects_path}")
