"""An export's text on its way to the file: BOM, re-encoding and compression, streamed.

Engines render UTF-8 text (CSV or JSON lines) and write it, batch by batch, into the
writable that `text_sink` opens; what reaches the disk is in the output's charset and
compression. Memory stays flat: every step works on one batch at a time. With plain UTF-8
and no compression the writable is the file itself, so the common case pays nothing.
"""

from __future__ import annotations

import codecs
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from tagport.exports.formats import Compression, OutputFormat


class Transcoder:
    """A writable that re-encodes UTF-8 text into another charset as it passes through.

    The incremental decoder carries a character cut between two writes over to the next.
    """

    def __init__(self, target: pa.NativeFile, codec: str) -> None:
        self.target = target
        self.codec = codec
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.closed = False

    def write(self, data: Any) -> int:
        text = self._decoder.decode(memoryview(data).tobytes())
        if text:
            self.target.write(text.encode(self.codec))
        return len(data)

    def flush(self) -> None:
        """Nothing is held back but a cut character, which `close` refuses."""

    def close(self) -> None:
        self._decoder.decode(b"", final=True)  # raises on a truncated character
        self.closed = True


class GzipStream:
    """A writable that gzips what passes through, at zlib's level 6 (gzip's default).

    pyarrow's gzip stream compresses at its highest level: 4x the CPU of level 6 for a
    file ~10% smaller (bench/export_bench.py). zlib releases the GIL while it compresses,
    so the engine's threads go on meanwhile.
    """

    LEVEL = 6

    def __init__(self, target: pa.NativeFile) -> None:
        self.target = target
        self._zlib = zlib.compressobj(self.LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.target.write(self._zlib.compress(view))
        return view.nbytes

    def flush(self) -> None:
        """Nothing to do: what zlib holds back goes out at `close`."""

    def close(self) -> None:
        if not self.closed:
            self.target.write(self._zlib.flush())
            self.closed = True


def _compressed(raw: pa.NativeFile, compression: Compression) -> Any:
    if compression is Compression.GZIP:
        return GzipStream(raw)
    return pa.CompressedOutputStream(raw, compression.value)


@contextmanager
def text_sink(dest: Path, output: OutputFormat) -> Iterator[Any]:
    """A writable for UTF-8 text that lands in `dest` as `output` says.

    The file is opened here so that its descriptor is closed even when a write fails (a
    full disk): the space of the removed partial file must come back at once.
    """
    with pa.OSFile(str(dest), "wb") as raw:
        stream = raw
        if output.compression is not Compression.NONE:
            stream = _compressed(raw, output.compression)
        try:
            encoding = output.encoding
            if encoding.bom:
                stream.write(encoding.bom)
            if encoding.codec == "utf-8":
                yield stream
            else:
                transcoder = Transcoder(stream, encoding.codec)
                yield transcoder
                transcoder.close()
        finally:
            if stream is not raw:
                stream.close()  # the compressor's last block, before the file closes
