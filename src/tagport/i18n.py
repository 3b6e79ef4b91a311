"""The `language` header of GrowingIO's OpenAPI: `CH` (default) or `US` (English).

It picks display names (`name_en` from the catalog, where one was given) and the
language of error messages on the routes that honour it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Language(StrEnum):
    CH = "CH"  # Chinese, GrowingIO's default
    US = "US"  # English


def language_of(header: str | None) -> Language:
    """`US` (or any `en...`) means English; anything else, or no header, means CH."""
    value = (header or "").strip().upper()
    return Language.US if value == "US" or value.startswith("EN") else Language.CH


@dataclass(frozen=True)
class Text:
    """One message in both languages, with `str.format` fields."""

    ch: str
    us: str

    def __call__(self, language: Language, **fields: object) -> str:
        template = self.us if language is Language.US else self.ch
        return template.format(**fields)
