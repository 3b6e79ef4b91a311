"""The worker pool: threads that claim and run jobs, in the server or in `tagport worker`."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterable

from tagport.engines.base import Engine
from tagport.engines.on_demand import EngineSource, engine_source
from tagport.errors import fault_of
from tagport.jobs.runner import Turn, worker_id
from tagport.jobs.service import JobService

log = logging.getLogger("tagport.worker")

STORE_BUSY_PAUSE = 1.0  # seconds a worker waits when another process holds the store


class WorkerPool:
    """`size` threads; each claims the oldest claimable job, runs it, and looks again.

    A submit in this process wakes a worker at once; jobs queued by other processes are
    found within `poll_interval` seconds. `start` first hands back the jobs of dead
    processes of this machine; jobs of other live workers are never taken before their
    lease lapses.
    """

    def __init__(self, service: JobService, engine: Engine | EngineSource, size: int,
                 poll_interval: float, *, kinds: Iterable[str] | None = None) -> None:
        """`kinds`: the kinds of job the pool takes (default any; a pool on a read-only
        engine takes only exports)."""
        self.service = service
        self.kinds = kinds
        self.engines: EngineSource = engine_source(engine)
        self.size = size
        self.poll_interval = poll_interval
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.name = worker_id(secrets.token_hex(3))
        self._workers = [f"{self.name}-{n}" for n in range(size)]

    def start(self) -> None:
        released = self.service.runner.release_orphans()
        if released:
            log.warning("handed %d job(s) of exited processes back to the queue", released)
        for n, worker in enumerate(self._workers):
            thread = threading.Thread(target=self._loop, args=(worker,),
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
        for job_id in self.service.runner.hand_back_running(self._workers):
            log.warning("job %s: still running after %.0f s; handed back to the queue",
                        job_id, grace)
        return not any(thread.is_alive() for thread in self._threads)

    def _loop(self, worker: str) -> None:
        failing: str | None = None  # the fault said once, until the store answers again
        while not self._stopping.is_set():
            try:
                turn = self.service.runner.run_next(worker, self.engines,
                                                    stopping=self._stopping, kinds=self.kinds)
                if failing is not None:
                    log.warning("%s: claiming jobs works again", worker)
                    failing = None
                if turn is Turn.RAN:
                    continue
                if turn is Turn.HANDED_BACK:  # the store is busy or broken: not at once
                    self._stopping.wait(STORE_BUSY_PAUSE)
                    continue
            except Exception as exc:  # the metadata store hiccuped: look again later
                fault = fault_of(exc)
                said = fault.code if fault else repr(exc)  # its wording varies (a restart)
                if fault is None or said != failing:
                    log.warning("%s: claiming or running a job failed; looking again every"
                                " %g s", worker, self.poll_interval, exc_info=exc)
                failing = said
            with self._wake:
                self._wake.wait(self.poll_interval)
