"""What an engine can do, as data: checked against a request before it is queued."""

from __future__ import annotations

from dataclasses import dataclass

from tagport.errors import BadRequest
from tagport.exports.formats import Charset, Compression, FileFormat, OutputFormat


@dataclass(frozen=True)
class EngineCapabilities:
    """An engine's declaration of what it writes and how it may be opened."""

    engine: str
    file_formats: frozenset[FileFormat]
    compressions: frozenset[Compression]
    charsets: frozenset[Charset]
    split_parts: bool  # can split a result into parts of at most N rows
    single_writer: bool  # one process writes the store; others open it read-only

    def check(self, output: OutputFormat) -> None:
        """Refuse (400 UNSUPPORTED_BY_ENGINE) an output this engine does not write."""
        for value, supported, field in (
            (output.file_format, self.file_formats, "fileFormat"),
            (output.compression, self.compressions, "compression"),
            (output.charset, self.charsets, "charset"),
        ):
            if value not in supported:
                raise BadRequest(
                    f"{field}: the {self.engine} engine does not write {value.value!r}"
                    f" (it writes {', '.join(sorted(v.value for v in supported))})",
                    code="UNSUPPORTED_BY_ENGINE",
                )
