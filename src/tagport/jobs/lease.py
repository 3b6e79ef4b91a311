"""Keeping a running job's lease: a thread that renews it every third of its length."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine as DbEngine

from tagport.jobs import repository
from tagport.jobs.periodic import Periodic

log = logging.getLogger("tagport.jobs")


class LeaseKeeper(Periodic):
    """While the `with` block runs, renew `worker`'s lease on `job_id`.

    If a renewal finds the job no longer claimed by `worker` (its lease lapsed and
    another worker took it, or it was cancelled), `lost` is set and renewing stops; the
    job's guarded stage changes will then refuse this worker, so it cannot publish.
    A renewal that fails (the database is unreachable) is retried at the next tick.
    """

    def __init__(self, db: DbEngine, job_id: str, worker: str, seconds: float) -> None:
        super().__init__(seconds / 3, name=f"tagport-lease-{job_id}")
        self.db = db
        self.job_id = job_id
        self.worker = worker
        self.seconds = seconds
        self.lost = threading.Event()

    def tick(self) -> bool:
        try:
            with self.db.begin() as conn:
                kept = repository.renew(conn, self.job_id, self.worker, self.seconds)
        except Exception:
            log.exception("job %s: renewing the lease failed; trying again", self.job_id)
            return True
        if not kept:
            log.warning("job %s: %s lost its claim (lease lapsed and the job was taken, "
                        "or it was cancelled); its result will not be published",
                        self.job_id, self.worker)
            self.lost.set()
            return False
        return True
