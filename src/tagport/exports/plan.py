"""An export as the engines receive it, what they hand back, and how they are stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tagport.catalog.models import CatalogEntry
from tagport.exports.formats import FileFormat, HeaderType, OutputFormat
from tagport.exports.selection import Selection, TagSelection


@dataclass(frozen=True)
class ExportPlan:
    """One export: the selected users, the columns after gio_id, and the file's format."""

    selection: Selection
    columns: tuple[CatalogEntry, ...]
    output: OutputFormat = field(default_factory=OutputFormat)

    @property
    def file_format(self) -> FileFormat:
        return self.output.file_format

    @property
    def header_type(self) -> HeaderType:
        return self.output.header_type

    @classmethod
    def for_tag(cls, tag: CatalogEntry, columns: tuple[CatalogEntry, ...],
                output: OutputFormat | None = None) -> ExportPlan:
        """The plan of the users covered by `tag`."""
        return cls(TagSelection(tag), columns, output or OutputFormat())

    def header_names(self) -> list[str]:
        """The header row's cells: `gio_id`, then the columns' keys or display names."""
        if self.header_type is HeaderType.NAME:
            return ["gio_id", *(e.name for e in self.columns)]
        return ["gio_id", *(e.key for e in self.columns)]


@dataclass(frozen=True)
class ExportOutput:
    """What an export wrote: its rows, and its files in order (one, or several parts)."""

    row_count: int
    files: list[Path]


class ExportStopped(Exception):
    """An export gave up because its `stop` event was set (the job was cancelled, or its
    worker lost the claim): what it wrote is incomplete and must be thrown away."""

    def __init__(self, rows: int | None) -> None:
        """`rows`: how many were written, when the engine knows."""
        super().__init__("the export was stopped"
                         + ("" if rows is None else f" after {rows} rows"))
        self.rows = rows
