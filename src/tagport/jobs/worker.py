"""The worker pool: threads that claim and run jobs, in the server or in `tagport worker`."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Protocol

from tagport.engines.base import Engine
from tagport.engines.on_demand import EngineOnDemand
from tagport.errors import StoreBusy
from tagport.jobs.runner import worker_id
from tagport.jobs.service import JobService

log = logging.getLogger("tagport.worker")

STORE_BUSY_PAUSE = 1.0  # seconds a worker waits when another process holds the store


class EngineSource(Protocol):
    def use(self) -> AbstractContextManager[Engine]: ...


class HeldEngine:
    """An engine that stays open (the server's DuckDB writer)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def use(self) -> Iterator[Engine]:
        yield self.engine


class WorkerPool:
    """`size` threads; each claims the oldest claimable job, runs it, and looks again.

    A submit in this process wakes a worker at once; jobs queued by other processes are
    found within `poll_interval` seconds. `start` first hands back the jobs of dead
    processes of this machine; jobs of other live workers are never taken before their
    lease lapses.
    """

    def __init__(self, service: JobService, engine: Engine | EngineSource, size: int,
                 poll_interval: float) -> None:
        self.service = service
        self.engines: EngineSource = (
            engine if isinstance(engine, (HeldEngine, EngineOnDemand)) else HeldEngine(engine)
        )
        self.size = size
        self.poll_interval = poll_interval
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[str, str] = {}  # worker -> job id
        self.name = worker_id(secrets.token_hex(3))

    def start(self) -> None:
        released = self.service.runner.release_orphans()
        if released:
            log.warning("handed %d job(s) of exited processes back to the queue", released)
        for n in range(self.size):
            thread = threading.Thread(target=self._loop, args=(f"{self.name}-{n}",),
                                      name=f"tagport-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        with self._wake:
            self._wake.notify()

    def stop(self, grace: float = 30.0) -> bool:
        """Stop claiming; let running exports finish within `grace` seconds, then hand
        the rest back to the queue (another worker, or this one restarted, runs them).
        False when exports were abandoned: their threads still run, and the process
        should end with `os._exit` (an engine torn down under a running query aborts)."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for worker, job_id in list(self._running.items()):
            if self.service.runner.hand_back(job_id, worker):
                log.warning("job %s: still running after %.0f s; handed back to the queue",
                            job_id, grace)
        return not any(thread.is_alive() for thread in self._threads)

    def _loop(self, worker: str) -> None:
        while not self._stopping.is_set():
            try:
                job_id = self.service.claim_next(worker)
                if job_id is not None and self._stopping.is_set():  # claimed as stop began
                    self.service.runner.hand_back(job_id, worker, refund=True)
                    return
                if job_id is not None:
                    self._run(worker, job_id)
                    continue
            except Exception:  # the metadata store hiccuped: look again later
                log.exception("claiming or running a job failed")
            with self._wake:
                self._wake.wait(self.poll_interval)

    def _run(self, worker: str, job_id: str) -> None:
        with ExitStack() as stack:
            try:
                engine = stack.enter_context(self.engines.use())
            except StoreBusy as busy:  # a load is writing: nothing ran, the try is free
                self.service.runner.hand_back(job_id, worker, refund=True)
                log.warning("job %s: the profile store is busy, handed back: %s",
                            job_id, busy.message)
                self._stopping.wait(STORE_BUSY_PAUSE)
                return
            except Exception:  # counts as an attempt, so a broken store ends in ERROR
                self.service.runner.hand_back(job_id, worker)
                log.exception("job %s: opening the data engine failed; handed back", job_id)
                self._stopping.wait(STORE_BUSY_PAUSE)
                return
            self._running[worker] = job_id
            try:
                self.service.run(job_id, engine, worker)
            finally:
                self._running.pop(worker, None)
