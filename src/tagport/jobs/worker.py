"""The in-process worker pool of the embedded default: threads that claim and run jobs."""

from __future__ import annotations

import logging
import os
import socket
import threading

from tagport.engines.base import Engine
from tagport.jobs.service import JobService

log = logging.getLogger("tagport.worker")


class WorkerPool:
    """`size` threads; each claims the oldest waiting job, runs it, and looks again.

    A submit in this process wakes a worker at once; jobs queued by other processes
    (for example `tagport export` while the server runs) are found within
    `poll_interval` seconds.
    """

    def __init__(
        self, service: JobService, engine: Engine, size: int, poll_interval: float
    ) -> None:
        self.service = service
        self.engine = engine
        self.size = size
        self.poll_interval = poll_interval
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._prefix = f"{socket.gethostname()}:{os.getpid()}"

    def start(self) -> None:
        released = self.service.release_claimed()
        if released:
            log.warning("handed %d interrupted job(s) back to the queue", released)
        for n in range(self.size):
            thread = threading.Thread(target=self._loop, args=(f"{self._prefix}:{n}",),
                                      name=f"tagport-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        with self._wake:
            self._wake.notify()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; let running exports finish within `timeout`."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self, worker: str) -> None:
        while not self._stopping.is_set():
            try:
                job_id = self.service.claim_next(worker)
            except Exception:  # the metadata store hiccuped: look again later
                log.exception("claiming a job failed")
                job_id = None
            if job_id is None:
                with self._wake:
                    self._wake.wait(self.poll_interval)
                continue
            self.service.run(job_id, self.engine)
