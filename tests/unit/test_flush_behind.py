"""FlushBehind: flushes the work dir's files while they are written, and stops cleanly."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import pytest

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


def resident_pages(path) -> int:
    """How many of the file's pages are in the page cache (util-linux's fincore)."""
    out = subprocess.run(["fincore", "--raw", "--noheadings", "--output", "PAGES", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


@pytest.mark.skipif(shutil.which("fincore") is None, reason="needs util-linux's fincore")
def test_what_is_flushed_leaves_the_page_cache(tmp_path):
    path = tmp_path / "result.json"
    with open(path, "wb") as f:
        f.write(os.urandom(8 * 1024 * 1024))
        f.flush()
        assert resident_pages(path) > 1000  # just written: cached
        FlushBehind(tmp_path).flush()
        assert resident_pages(path) == 0  # on disk, and no longer cached
    assert path.stat().st_size == 8 * 1024 * 1024
