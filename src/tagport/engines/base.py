"""The engine boundary: what every data engine (DuckDB, Spark) must do.

An engine owns the profile store (the wide user table and the identity map). It loads
user records with identity resolution and writes the users of a selection to a file, in
the export domain's vocabulary (tagport.exports): engines import it, never the reverse.
It declares what it can do as data (`capabilities`). The shared suites in
tests/integration/test_engine_contract.py and test_engine_load_contract.py check any engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from threading import Event
from typing import Any, Protocol

from tagport.catalog.models import CatalogEntry, TagCoverage
from tagport.computes import Definition
from tagport.exports.capabilities import EngineCapabilities
from tagport.exports.plan import ExportOutput, ExportPlan


class InputFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


@dataclass(frozen=True)
class Reject:
    """One rejected input record: its line (1-based, as a person counts them) and why."""

    line: int
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field {self.field}" if self.field else "")
        return f"{where}: {self.reason}"


@dataclass
class LoadReport:
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)
    applied: bool = False
    # catalog keys that received at least one non-null value (they now "hold data")
    keys_with_data: list[str] = field(default_factory=list)


class Engine(Protocol):
    name: str
    capabilities: EngineCapabilities

    def export(self, plan: ExportPlan, work_dir: Path, file_name: str,
               stop: Event | None = None) -> ExportOutput:
        """Write the plan's rows into `work_dir` (new, empty, private to this attempt) as
        `file_name`, or as parts named by `exports.naming.part_name`; the job service
        moves them into place. Once `stop` is set, give up as soon as the engine can and
        raise exports.plan.ExportStopped."""
        ...

    def load(
        self,
        path: Path,
        input_format: InputFormat,
        catalog: dict[str, CatalogEntry],
        *,
        skip_invalid: bool = False,
        before_commit: LoadHook | None = None,
    ) -> LoadReport:
        """Resolve and apply a file of user records, all or nothing (or valid rows only)."""
        ...

    def compute_tag(self, tag: CatalogEntry, definition: Definition, *, as_of: date,
                    stop: Event | None = None) -> int:
        """Replace `tag`'s values for every user at once with what `definition` (checked by
        tagport.computes) yields on the compute date `as_of`, null for users it gives no
        value; return the users that got one. A reader sees the old values or the new,
        never a mix. A failing query raises computes.ComputeFailed and touches no value;
        once `stop` is set, give up before replacing anything (computes.ComputeStopped)."""
        ...

    def user_count(self) -> int: ...

    def tag_coverage(self, tags: Sequence[CatalogEntry]) -> TagCoverage:
        """Count the users each tag covers, set-based (a tag never loaded covers none)."""
        ...

    def tag_users(self, plan: ExportPlan, limit: int, offset: int) -> list[dict[str, Any]]:
        """A page of the plan's rows in the export's JSON shape (`gio_id`,
        `identifications`, `properties`), in ascending gio_id order."""
        ...

    def find_user(
        self, identity_key: str, value: str, entries: Sequence[CatalogEntry]
    ) -> dict[str, Any] | None:
        """The user holding `value` for identity `identity_key` (`id_<k>`), with
        `entries` in the export's JSON shape; None when no user holds it."""
        ...

    def ping(self) -> None:
        """Raise when the profile store cannot answer a trivial query (readiness)."""
        ...

    def close(self) -> None: ...


class LoadHook(Protocol):
    def __call__(self, report: LoadReport) -> None: ...


def input_format_of(path: Path) -> InputFormat:
    suffix = path.suffix.lower()
    formats = {".csv": InputFormat.CSV, ".jsonl": InputFormat.JSONL, ".ndjson": InputFormat.JSONL,
               ".json": InputFormat.JSONL, ".parquet": InputFormat.PARQUET}
    if suffix not in formats:
        from tagport.errors import InvalidInput

        raise InvalidInput(
            f"{path}: cannot tell the format from {suffix!r}; use .csv, .jsonl or .parquet"
        )
    return formats[suffix]
