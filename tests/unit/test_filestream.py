"""ResultFileResponse: the bytes of the file, and a server RSS that does not grow with it."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from tagport.api.filestream import ResultFileResponse


def _rss_file_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


def _get(path, headers=()):
    """Run the response as the server would, touching every byte it is given."""
    scope = {"type": "http", "method": "GET", "headers": list(headers),
             "asgi": {"spec_version": "2.4"}}
    sent: list[dict] = []
    digest = hashlib.sha256()
    peak = [0]
    start = _rss_file_kib()

    async def receive():
        await asyncio.sleep(3600)

    async def send(message):
        body = message.get("body")
        if body is not None:
            digest.update(body)  # reads each page, as the socket write would
            message = {**message, "body": len(body)}
        sent.append(message)
        peak[0] = max(peak[0], _rss_file_kib() - start)

    asyncio.run(ResultFileResponse(path, media_type="text/csv")(scope, receive, send))
    return sent, digest.hexdigest(), peak[0]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_sends_the_whole_file_without_keeping_it_mapped(tmp_path):
    path = tmp_path / "big.csv"
    data = os.urandom(1 << 20) * 48 + b"tail"  # 48 MiB and a few bytes
    path.write_bytes(data)
    sent, digest, peak_kib = _get(path)
    assert sent[0]["status"] == 200
    assert (b"content-length", str(len(data)).encode()) in sent[0]["headers"]
    assert digest == hashlib.sha256(data).hexdigest()
    assert sum(m["body"] for m in sent[1:]) == len(data)
    assert sent[-1]["more_body"] is False
    assert all(m["more_body"] for m in sent[1:-1])
    # mapped pages behind the slice being sent are let go: ~8 MiB kept, not 48
    assert peak_kib < 20 * 1024, peak_kib


def test_an_empty_file_and_a_range(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    sent, digest, _ = _get(empty)
    assert sent[0]["status"] == 200
    assert [m["body"] for m in sent[1:]] == [0]
    path = tmp_path / "small.csv"
    path.write_bytes(b"0123456789")
    sent, digest, _ = _get(path, headers=[(b"range", b"bytes=2-4")])
    assert sent[0]["status"] == 206
    assert digest == hashlib.sha256(b"234").hexdigest()
