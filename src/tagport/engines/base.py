"""The engine boundary: what every data engine (DuckDB, Spark) must do.

An engine owns the profile store (the wide user table and the identity map). It loads
user records with identity resolution and writes the users of a selection to a file, in
the export domain's vocabulary (tagport.exports): engines import it, never the reverse.
It declares what it can do as data (`capabilities`). The shared suites in
tests/integration/test_engine_contract.py and test_engine_load_contract.py check any engine.

It also stores behavioural events (`load_events`), in one relation `events` laid out alike
on every engine (tag and segment queries are compiled against it):
`gio_id` (unsigned 64-bit), `event` (the event key), `time` (TIMESTAMP, UTC, no zone),
`dt` (DATE: the event's local day in the load's zone), `id` (the event's own id, or
NULL), `seq` (BIGINT: the load order, strictly increasing across loads and, within a file,
in line order; it breaks ties in time), then one column per event attribute key typed by
the event catalog, added when a load first brings it. tests/integration/test_engine_events.py
checks any engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, tzinfo
from enum import StrEnum
from pathlib import Path
from threading import Event
from typing import Any, Protocol

from tagport.catalog.models import (
    CatalogEntry,
    Distribution,
    EventDefinition,
    MembersReport,
    Portrait,
    TagCoverage,
)
from tagport.computes import Definition
from tagport.conditions import Condition
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


@dataclass
class EventLoadReport:
    """What an event load did: events appended, events skipped because their `id` is
    stored already (or came earlier in the file), users created for identities no user
    held, and the rejected lines."""

    appended: int = 0
    duplicates: int = 0
    users_created: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)
    applied: bool = False
    # identity keys that gained values (new users, new values of known users)
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

    def load_events(
        self,
        path: Path,
        input_format: InputFormat,
        catalog: dict[str, CatalogEntry],
        events_catalog: Mapping[str, EventDefinition],
        *,
        zone: tzinfo,
        known_users_only: bool = False,
        skip_invalid: bool = False,
        before_commit: EventLoadHook | None = None,
    ) -> EventLoadReport:
        """Resolve a file of events to users (creating users for unknown identities
        unless `known_users_only`) and append them, all or nothing (or valid ones only);
        an event whose `id` is stored on its day already is skipped. `zone` gives times
        without an offset their instant and every event its local day (`dt`)."""
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

    def distribution(self, entry: CatalogEntry, *, top: int = 20,
                     bins: int = 10) -> Distribution:
        """How `entry`'s values spread over the users, set-based: the `top` most common
        values, or `bins` equal-width bins for numbers (catalog.models.Distribution)."""
        ...

    def replace_members(self, segment: CatalogEntry, identity_key: str,
                        path: Path) -> MembersReport:
        """Make exactly the users holding one of the values in `path` (a UTF-8 CSV whose one
        column is headed `identity_key`, an `id_…` key of the catalog) the members of
        `segment`'s column (TRUE), everyone else NULL, atomically (a reader sees the old
        members or the new, never a mix; a failure changes nothing). Up to 20 million rows,
        streamed by the engine (never read into Python memory). A multi-valued identity
        (values joined by `||` in the store) matches on any value. A header that is not
        `identity_key`, more than one column, or an unreadable file: InvalidInput
        (tagport.errors) naming the line/field. Empty lines are ignored."""
        ...

    def count_members(self, condition: Condition, *, as_of: date,
                      sample: float | None = None) -> int:
        """How many users `condition` (a checked tagport.conditions tree) holds for on the
        compute date `as_of`. With `sample` (0 < sample < 1): counted on that fraction of
        the users chosen by gio_id (deterministic, so repeated estimates agree) with `did`
        reading only those users' events, and scaled back up, rounded."""
        ...

    def portrait(self, entry: CatalogEntry, among: CatalogEntry, *, top: int = 20,
                 bins: int = 10) -> Portrait:
        """`entry`'s distribution among the users holding a value in `among`'s column (a
        segment's membership column or a tag) against all users, on the engine, set-based
        (catalog.models.Portrait)."""
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

    def recent_events(self, gio_id: int, limit: int) -> list[dict[str, Any]]:
        """The user's `limit` most recent events, newest first (by time, then seq): each
        `{event, time, dt, id, seq, attributes}`, `time` a naive UTC datetime, `dt` a date,
        `attributes` the event's non-null attribute values by key. None stored: []."""
        ...

    def ping(self) -> None:
        """Raise when the profile store cannot answer a trivial query (readiness)."""
        ...

    def close(self) -> None: ...


class LoadHook(Protocol):
    def __call__(self, report: LoadReport) -> None: ...


class EventLoadHook(Protocol):
    def __call__(self, report: EventLoadReport) -> None: ...


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
