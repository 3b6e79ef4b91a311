"""SQLite's submits: one thread commits the waiting ones together.

SQLite has one writer, and each commit waits for an fsync of the WAL (~4 ms on the
benchmark machine). Submits from many threads, each in its own transaction, took the
lock one at a time and waited in SQLite's busy handler, which sleeps in growing steps:
the tail grew to seconds. Here every submit of the process joins a queue; one thread
takes all that wait, opens `BEGIN IMMEDIATE` (it queues on the lock at once, rather
than failing on a read-then-write upgrade), stores them in order and commits once. A
submit is answered after the commit that holds it, so a 200 means it is stored.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as DbEngine

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 200  # submits per commit: bounds how long the write lock is held


class SubmitWriter(Generic[T, R]):
    """Runs `store(conn, items)` for the queued items, a batch per transaction; it
    answers each item with a result or the exception that refuses it (a 429). A batch
    is a few statements, not a few per item: each statement lets go of the GIL, and
    getting it back behind the busy event loop costs up to a switch interval (5 ms).
    A failed commit fails the whole batch."""

    def __init__(self, db: DbEngine,
                 store: Callable[[Connection, list[T]], list[R | Exception]]) -> None:
        self.db = db
        self.store = store
        self._queue: queue.SimpleQueue[tuple[T, Future[R]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, item: T) -> Future[R]:
        """Queue `item`; the future holds what `store` returned once committed."""
        future: Future[R] = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tagport-submits",
                                                 daemon=True)
                self._thread.start()
            self._queue.put((item, future))
        return future

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[tuple[T, Future[R]]]) -> None:
        try:
            with self.db.connect() as conn:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                answers = self.store(conn, [item for item, _ in batch])
                conn.commit()
        except BaseException as exc:  # nothing was stored: every submit gets the cause
            for _, future in batch:
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)
