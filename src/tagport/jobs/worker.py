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
from tagport.jobs.heartbeat import Heartbeat
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
        self.faults = FaultNotice()
        self._heartbeat = Heartbeat(service.db, self.name, kinds)

    def start(self) -> None:
        self._heartbeat.__enter__()  # clients can see that someone will run their jobs
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
        if self._threads:  # started
            self._heartbeat.__exit__(None, None, None)
        return not any(thread.is_alive() for thread in self._threads)

    def _loop(self, worker: str) -> None:
        while not self._stopping.is_set():
            try:
                turn = self.service.runner.run_next(
                    worker, self.engines, stopping=self._stopping, kinds=self.kinds,
                    on_unavailable=lambda job_id, exc: self.faults.engine_failed(
                        worker, job_id, exc))
                self.faults.claimed(worker)
                if turn is Turn.RAN:
                    self.faults.ran(worker)
                    continue
                if turn is Turn.HANDED_BACK:  # the store is busy or broken: not at once
                    self._stopping.wait(STORE_BUSY_PAUSE)
                    continue
            except Exception as exc:  # the metadata store hiccuped: look again later
                self.faults.claim_failed(worker, exc, self.poll_interval)
            with self._wake:
                self._wake.wait(self.poll_interval)


class FaultNotice:
    """What a pool's threads log about faults: each fault once for the whole pool, and
    once that it works again, rather than a line per look. A claim fault (the metadata
    store) ends when a claim works; an engine fault (the profile store held by another
    process, or broken) when a job runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claim: str | None = None  # the fault said, until it ends
        self._engine: str | None = None

    def claim_failed(self, worker: str, exc: Exception, poll_interval: float) -> None:
        fault = fault_of(exc)
        said = fault.code if fault else repr(exc)  # its wording varies (a restart)
        with self._lock:
            new, self._claim = said != self._claim or fault is None, said
        if new:
            log.warning("%s: claiming or running a job failed; looking again every %g s",
                        worker, poll_interval, exc_info=exc)

    def engine_failed(self, worker: str, job_id: str, exc: Exception) -> None:
        fault = fault_of(exc)
        said = fault.code if fault else repr(exc)
        with self._lock:
            new, self._engine = said != self._engine or fault is None, said
        if new:
            log.warning("%s: job %s handed back: %s; trying again every %g s (said once, "
                        "until a job runs)", worker, job_id,
                        fault.message if fault else repr(exc), STORE_BUSY_PAUSE,
                        exc_info=None if fault else exc)

    def claimed(self, worker: str) -> None:
        with self._lock:
            was, self._claim = self._claim, None
        if was is not None:
            log.warning("%s: claiming jobs works again", worker)

    def ran(self, worker: str) -> None:
        with self._lock:
            was, self._engine = self._engine, None
        if was is not None:
            log.warning("%s: the profile store can be used again: jobs run", worker)
