"""A worker pool's heartbeat in the metadata store, so that the server can tell a client
that no live worker will take its job (`liveWorkers` in the job-result document)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import TracebackType

from sqlalchemy.engine import Engine as DbEngine

from tagport.jobs import repository
from tagport.jobs.periodic import Periodic

log = logging.getLogger("tagport.worker")

HEARTBEAT_SECONDS = 2.0  # how often a pool says it is alive
MISSED_BEATS = 3  # a pool that has not said so for this many beats is dead


class Heartbeat(Periodic):
    """While the `with` block runs, keep pool `worker`'s row alive; its row goes at the
    end. A beat that fails (the metadata store is unreachable) is tried at the next one:
    the pool says that fault itself."""

    def __init__(self, db: DbEngine, worker: str, kinds: Iterable[str] | None,
                 interval: float = HEARTBEAT_SECONDS) -> None:
        super().__init__(interval, name=f"tagport-heartbeat-{worker}")
        self.db = db
        self.worker = worker
        self.kinds = None if kinds is None else list(kinds)

    def __enter__(self) -> Heartbeat:
        self.tick()  # alive from the start, not a beat later
        return super().__enter__()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        super().__exit__(exc_type, exc, tb)
        try:
            with self.db.begin() as conn:
                repository.forget_worker(conn, self.worker)
        except Exception as error:  # its row lapses on its own
            log.debug("%s: removing the heartbeat failed: %s", self.worker, error)

    def tick(self) -> bool:
        try:
            with self.db.begin() as conn:
                repository.beat(conn, self.worker, self.kinds, self.interval * MISSED_BEATS)
        except Exception as error:
            log.debug("%s: the heartbeat failed: %s", self.worker, error)
        return True
