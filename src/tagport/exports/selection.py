"""What an export selects: the users it writes.

A selection names one column of the profile table, and its users are those holding a
value there (not null; the loader stores an empty array as null). A tag selects the users
it covers; a segment selects its members the same way, through its membership column.
Engines read only `column`, so adding a kind of selection is one class here plus its route.
"""

from __future__ import annotations

from dataclasses import dataclass

from tagport.catalog.models import CatalogEntry
from tagport.catalog.segments import Segment


@dataclass(frozen=True)
class TagSelection:
    """The users covered by a user tag."""

    tag: CatalogEntry

    @property
    def column(self) -> CatalogEntry:
        return self.tag

    @property
    def display_name(self) -> str:
        """The name the result file is named after."""
        return self.tag.name


@dataclass(frozen=True)
class SegmentSelection:
    """The members of a segment (its membership column is TRUE for them, else NULL)."""

    segment: Segment

    @property
    def column(self) -> CatalogEntry:
        return self.segment.column

    @property
    def display_name(self) -> str:
        return self.segment.name


Selection = TagSelection | SegmentSelection
