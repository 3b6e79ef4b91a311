"""`tagport worker`: the export worker pool in a process of its own, without HTTP."""

from __future__ import annotations

import logging.config
import os
import signal
import threading
from types import FrameType

import typer

from tagport.cli import runtime
from tagport.engines import capabilities as engine_capabilities
from tagport.engines import open_engine
from tagport.engines.on_demand import EngineOnDemand
from tagport.jobs.models import EXPORT
from tagport.jobs.worker import WorkerPool
from tagport.ops.logs import logging_config
from tagport.tags.schedule import DailySchedule


def worker(
    threads: int | None = typer.Option(None, "--threads",
                                       help="Exports run at once (TAGPORT_WORKERS)."),
) -> None:
    """Run export jobs from the metadata store until SIGTERM or SIGINT.

    Run any number of these, on any machine that reaches the metadata store
    (TAGPORT_DATABASE_URL), the profile store and the result dir. On a stop signal the
    worker claims nothing more, lets running exports finish for TAGPORT_SHUTDOWN_GRACE
    seconds and hands the others back to the queue.
    """
    with runtime.core(workers=threads) as tp:
        s = tp.settings
        logging.config.dictConfig(logging_config(s.log_format, s.log_level))
        # DuckDB: read-only, and only while an export runs (see docs/deploy.md)
        engines = EngineOnDemand(lambda: open_engine(s, read_only=True))
        # a single-writer engine opened read-only runs exports only: computations write
        kinds = [EXPORT] if engine_capabilities(s.engine).single_writer else None
        pool = WorkerPool(tp.jobs, engines, s.workers, s.poll_interval, kinds=kinds)
        stop = _stop_event()
        pool.start()
        schedule = DailySchedule(tp.db, tp.tag_computes, s.compute_at, s.zone, pool.name)
        schedule.__enter__()
        runtime.out(f"tagport worker {pool.name}: {s.workers} export thread(s), "
                    f"results in {tp.results.url}")
        while not stop.wait(1.0):
            pass
        schedule.__exit__(None, None, None)
        runtime.out(f"tagport worker {pool.name}: stopping; running exports get "
                    f"{s.shutdown_grace:g} s to finish")
        if not pool.stop(s.shutdown_grace):
            runtime.out(f"tagport worker {pool.name}: stopped; unfinished exports were "
                        "handed back")
            os._exit(0)  # their threads are still in the engine: do not tear it down
        runtime.out(f"tagport worker {pool.name}: stopped")


def _stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
