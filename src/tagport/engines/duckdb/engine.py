"""DuckDB as a tagport engine: the embedded default."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import date, tzinfo
from pathlib import Path
from threading import Event
from typing import Any

from tagport.catalog.models import (
    CatalogEntry,
    Distribution,
    EventDefinition,
    MembersReport,
    Portrait,
)
from tagport.computes import Definition
from tagport.conditions import Condition
from tagport.config import Settings
from tagport.engines.base import (
    EventLoadHook,
    EventLoadReport,
    InputFormat,
    LoadHook,
    LoadReport,
    TagCoverage,
)
from tagport.engines.duckdb import CAPABILITIES, query, writers
from tagport.engines.duckdb.store import DuckDBStore
from tagport.exports.plan import ExportOutput, ExportPlan


class DuckDBEngine:
    name = "duckdb"
    capabilities = CAPABILITIES

    def __init__(self, store: DuckDBStore) -> None:
        self.store = store

    @classmethod
    def from_settings(cls, settings: Settings, *, read_only: bool = False) -> DuckDBEngine:
        # readers spill into a folder of their own: several processes may read at once
        spill = settings.spill_path / f"reader-{os.getpid()}" if read_only else settings.spill_path
        return cls(
            DuckDBStore(
                settings.profile_db_path,
                threads=settings.duckdb_threads,
                memory_limit=settings.duckdb_memory_limit,
                load_memory_limit=settings.load_memory_limit,
                temp_directory=spill,
                read_only=read_only,
            )
        )

    def export(self, plan: ExportPlan, work_dir: Path, file_name: str,
               stop: Event | None = None) -> ExportOutput:
        dest = work_dir / file_name
        cur = self.store.cursor()
        try:
            columns = self.store.user_columns(cur)
            rows = writers.write(cur, plan, columns, dest, stop)
        finally:
            cur.close()
        return ExportOutput(rows, [dest])

    def load(
        self,
        path: Path,
        input_format: InputFormat,
        catalog: dict[str, CatalogEntry],
        *,
        skip_invalid: bool = False,
        before_commit: LoadHook | None = None,
    ) -> LoadReport:
        from tagport.engines.duckdb.load import load_file

        return load_file(
            self.store, path, input_format, catalog,
            skip_invalid=skip_invalid, before_commit=before_commit,
        )

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
        from tagport.engines.duckdb.events import load_events

        return load_events(
            self.store, path, input_format, catalog, events_catalog, zone=zone,
            known_users_only=known_users_only, skip_invalid=skip_invalid,
            before_commit=before_commit,
        )

    def compute_tag(self, tag: CatalogEntry, definition: Definition, *, as_of: date,
                    stop: Event | None = None) -> int:
        from tagport.engines.duckdb.compute import compute_tag

        return compute_tag(self.store, tag, definition, as_of=as_of, stop=stop)

    def replace_members(self, segment: CatalogEntry, identity_key: str,
                        path: Path) -> MembersReport:
        from tagport.engines.duckdb import segments

        return segments.replace_members(self.store, segment, identity_key, path)

    def count_members(self, condition: Condition, *, as_of: date,
                      sample: float | None = None) -> int:
        from tagport.engines.duckdb import segments

        return segments.count_members(self.store, condition, as_of=as_of, sample=sample)

    def portrait(self, entry: CatalogEntry, among: CatalogEntry, *, top: int = 20,
                 bins: int = 10) -> Portrait:
        from tagport.engines.duckdb import segments

        return segments.portrait(self.store, entry, among, top=top, bins=bins)

    def user_count(self) -> int:
        return self.store.user_count()

    def distribution(self, entry: CatalogEntry, *, top: int = 20,
                     bins: int = 10) -> Distribution:
        cur = self.store.cursor()
        try:
            return query.distribution(cur, entry, self.store.user_columns(cur), top, bins)
        finally:
            cur.close()

    def tag_coverage(self, tags: Sequence[CatalogEntry]) -> TagCoverage:
        cur = self.store.cursor()
        try:
            return query.tag_coverage(cur, tags, self.store.user_columns(cur))
        finally:
            cur.close()

    def tag_users(self, plan: ExportPlan, limit: int, offset: int) -> list[dict[str, Any]]:
        cur = self.store.cursor()
        try:
            return query.tag_users(cur, plan, self.store.user_columns(cur), limit, offset)
        finally:
            cur.close()

    def find_user(
        self, identity_key: str, value: str, entries: Sequence[CatalogEntry]
    ) -> dict[str, Any] | None:
        cur = self.store.cursor()
        try:
            return query.find_user(cur, identity_key, value, entries,
                                   self.store.user_columns(cur))
        finally:
            cur.close()

    def recent_events(self, gio_id: int, limit: int) -> list[dict[str, Any]]:
        cur = self.store.cursor()
        try:
            return query.recent_events(cur, gio_id, limit, self.store.event_columns(cur))
        finally:
            cur.close()

    def ping(self) -> None:
        cur = self.store.cursor()
        try:
            cur.execute("SELECT 1").fetchall()
        finally:
            cur.close()

    def close(self) -> None:
        self.store.close()
