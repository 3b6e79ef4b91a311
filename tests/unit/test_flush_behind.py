"""FlushBehind: flushes the work dir's files while they are written, and stops cleanly."""

from __future__ import annotations

import os
import threading
import time

from tagport.jobs.flush import FlushBehind


def test_flushes_the_files_being_written_and_stops_on_exit(tmp_path, monkeypatch):
    synced: list[str] = []
    real = os.fdatasync

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", record)
    (tmp_path / "sub").mkdir()  # directories are left alone
    with FlushBehind(tmp_path, interval=0.01) as flusher, open(tmp_path / "a.csv", "wb") as f:
        for _ in range(20):
            f.write(b"x" * 65536)
            time.sleep(0.01)
        thread = flusher._thread
    assert not thread.is_alive()
    assert str(tmp_path / "a.csv") in synced
    assert all(path == str(tmp_path / "a.csv") for path in synced)


def test_files_that_vanish_or_a_missing_dir_do_not_stop_it(tmp_path):
    missing = tmp_path / "gone"
    with FlushBehind(missing, interval=0.005):
        time.sleep(0.05)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            path = tmp_path / "part.tmp"
            path.write_bytes(b"1")
            path.unlink()

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        with FlushBehind(tmp_path, interval=0.001) as flusher:
            time.sleep(0.1)
            flusher.flush()  # also callable directly, between the thread's rounds
    finally:
        stop.set()
        worker.join()
