"""Streaming a result file to the client: the one response class of `GET /download`.

A whole-file GET is sent from a read-only memory map of the file, in 1 MiB slices handed
to the server as they are: no read into a fresh buffer and no hop to a worker thread per
chunk (uvicorn has no sendfile). This streams ~25% faster than Starlette's
`FileResponse`, which reads each chunk in a thread. The pages ahead of the slice being
sent are requested from the kernel (`MADV_WILLNEED`) so that a file no longer in the page
cache is read ahead rather than faulted in one page at a time on the event loop, and the
pages well behind it are dropped from the map (`MADV_DONTNEED`: they stay in the page
cache, but no longer count in the server's RSS, which would otherwise grow by the size of
every file it sends; a slice the server still holds is faulted in again if touched).

Range and HEAD requests, and anything unusual, go to `FileResponse` as they are.
"""

from __future__ import annotations

import mmap
import os

import anyio
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

SLICE = 1024 * 1024
READ_AHEAD = 8 * SLICE
KEEP_BEHIND = 8 * SLICE  # sent pages kept mapped, for slices the server has not written yet


class ResultFileResponse(FileResponse):
    chunk_size = SLICE  # FileResponse's reads, for ranges

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"].upper() != "GET"
                or any(name == b"range" for name, _ in scope["headers"])
                or self.background is not None or self.status_code != 200):
            await super().__call__(scope, receive, send)
            return
        stat_result = await anyio.to_thread.run_sync(os.stat, self.path)
        self.set_stat_headers(stat_result)
        with open(self.path, "rb") as f:
            view = _map(f.fileno(), stat_result.st_size)
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        if view is None:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        mapped, size, dropped = view.obj, len(view), 0
        for start in range(0, size, SLICE):
            end = min(start + SLICE, size)
            if end < size:
                mapped.madvise(mmap.MADV_WILLNEED, end, min(end + READ_AHEAD, size) - end)
            behind = start - KEEP_BEHIND
            if behind > dropped:
                mapped.madvise(mmap.MADV_DONTNEED, dropped, behind - dropped)
                dropped = behind
            await send({"type": "http.response.body", "body": view[start:end],
                        "more_body": end < size})
        # the map is closed when the server lets go of the last slice it holds


def _map(fd: int, size: int) -> memoryview | None:
    """A read-only map of the whole file, None when it is empty (an empty map is an error)."""
    if size == 0:
        return None
    mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    mapped.madvise(mmap.MADV_SEQUENTIAL)
    return memoryview(mapped)
