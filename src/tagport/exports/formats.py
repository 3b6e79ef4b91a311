"""The export formats as data: what a file format, a compression and a charset are.

An engine looks its writer up by `FileFormat` and never asks "is it CSV?": what differs
between formats (the extension, the content type, whether a header row applies, whether
the file is text that may be compressed or re-encoded) is read from these tables.
Adding a format is one entry here plus one writer per engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FileFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    PARQUET = "parquet"


class HeaderType(StrEnum):
    KEY = "key"
    NAME = "name"


class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


class Charset(StrEnum):
    UTF8 = "UTF-8"
    UTF8_BOM = "UTF-8-BOM"
    UTF16LE = "UTF-16LE"


@dataclass(frozen=True)
class FormatInfo:
    """What a file format is, for naming, serving and checking a request."""

    extension: str
    content_type: str
    text: bool  # lines of text: may be compressed and re-encoded
    header: bool  # a header row of keys or display names
    charsets: tuple[Charset, ...]  # the charsets it may be written in; the first is default


FORMATS: dict[FileFormat, FormatInfo] = {
    FileFormat.CSV: FormatInfo("csv", "text/csv", text=True, header=True,
                               charsets=(Charset.UTF8, Charset.UTF8_BOM, Charset.UTF16LE)),
    FileFormat.JSON: FormatInfo("json", "application/x-ndjson", text=True, header=False,
                                charsets=(Charset.UTF8,)),
    FileFormat.PARQUET: FormatInfo("parquet", "application/vnd.apache.parquet", text=False,
                                   header=False, charsets=()),
}


@dataclass(frozen=True)
class CompressionInfo:
    extension: str | None  # appended to the format's: `.csv.gz`
    content_type: str | None  # the file's own type when compressed


COMPRESSIONS: dict[Compression, CompressionInfo] = {
    Compression.NONE: CompressionInfo(None, None),
    Compression.GZIP: CompressionInfo("gz", "application/gzip"),
    Compression.ZSTD: CompressionInfo("zst", "application/zstd"),
}


@dataclass(frozen=True)
class CharsetInfo:
    bom: bytes  # written before the first byte of the file
    codec: str  # Python's name for the encoding of the text
    mime: str  # its name in a Content-Type
    delimiter: str  # CSV's field separator (Excel reads UTF-16 text tab-separated)


CHARSETS: dict[Charset, CharsetInfo] = {
    Charset.UTF8: CharsetInfo(b"", "utf-8", "utf-8", ","),
    Charset.UTF8_BOM: CharsetInfo(b"\xef\xbb\xbf", "utf-8", "utf-8", ","),
    Charset.UTF16LE: CharsetInfo(b"\xff\xfe", "utf-16-le", "utf-16le", "\t"),
}


@dataclass(frozen=True)
class OutputFormat:
    """How an export's file is written: its format, header row, compression and charset."""

    file_format: FileFormat = FileFormat.CSV
    header_type: HeaderType = HeaderType.KEY
    compression: Compression = Compression.NONE
    charset: Charset = Charset.UTF8

    @property
    def info(self) -> FormatInfo:
        return FORMATS[self.file_format]

    @property
    def extension(self) -> str:
        """`csv`, `csv.gz`, `json.zst`, `parquet`."""
        suffix = COMPRESSIONS[self.compression].extension
        return self.info.extension + (f".{suffix}" if suffix else "")

    @property
    def content_type(self) -> str:
        compressed = COMPRESSIONS[self.compression].content_type
        if compressed is not None:
            return compressed
        if not self.info.text:
            return self.info.content_type
        return f"{self.info.content_type}; charset={CHARSETS[self.charset].mime}"

    @property
    def encoding(self) -> CharsetInfo:
        return CHARSETS[self.charset]

    @property
    def plain_utf8(self) -> bool:
        """Text as the engines render it: UTF-8, no BOM, `,`-separated, uncompressed."""
        return self.compression is Compression.NONE and self.charset is Charset.UTF8
