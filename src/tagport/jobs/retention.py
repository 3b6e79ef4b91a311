"""The retention sweep: a thread that deletes result files older than the TTL."""

from __future__ import annotations

import logging
import threading

from tagport.jobs.service import JobService

log = logging.getLogger("tagport.retention")


class RetentionSweeper:
    def __init__(self, service: JobService, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tagport-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.service.sweep_expired()
            except Exception:  # a failed sweep is retried at the next interval
                log.exception("retention sweep failed")
            self._stop.wait(self.interval)
