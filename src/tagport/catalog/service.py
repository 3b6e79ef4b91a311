"""Applying a catalog file and reading the catalog."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import Connection, Engine

from tagport.catalog import repository, segment_repository
from tagport.catalog.models import (
    CatalogEntry,
    EventAttribute,
    EventDefinition,
    Kind,
    ValueType,
    attribute_type_conflict,
    bare_key_error,
    event_attribute_key_error,
    key_error,
)
from tagport.catalog.schemas import CatalogFile
from tagport.catalog.segments import Segment, is_segment_key
from tagport.errors import Conflict, InvalidInput


@dataclass
class ApplyReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def read_catalog_file(path: Path) -> CatalogFile:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    try:
        return CatalogFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"{path}: {where}: {err['msg']}") from exc


def entries_from_file(spec: CatalogFile) -> list[CatalogEntry]:
    entries = [
        CatalogEntry(
            i.key, Kind.IDENTITY, i.name, ValueType.STRING, False, i.description, i.name_en
        )
        for i in spec.identities
    ]
    entries += [
        CatalogEntry(a.key, Kind.ATTRIBUTE, a.name, a.type, False, a.description, a.name_en)
        for a in spec.attributes
    ]
    entries += [
        CatalogEntry(t.key, Kind.TAG, t.name, t.type, t.is_array, t.description, t.name_en,
                     compute=t.compute,
                     scheduler=t.scheduler or ("DAILY" if t.compute is not None else None))
        for t in spec.tags
    ]
    seen: set[str] = set()
    for entry in entries:
        if problem := key_error(entry.kind, entry.key):
            raise InvalidInput(problem)
        if entry.key in seen:
            raise InvalidInput(f"key {entry.key!r} appears twice in the catalog file")
        seen.add(entry.key)
    return entries


def events_from_file(spec: CatalogFile) -> list[EventDefinition]:
    """The file's event catalog, checked: bare keys, no reserved attribute key, nothing
    twice, and one type per attribute key across the file's events."""
    events: list[EventDefinition] = []
    seen: set[str] = set()
    for e in spec.events:
        if problem := bare_key_error("event key", e.key):
            raise InvalidInput(problem)
        if e.key in seen:
            raise InvalidInput(f"event {e.key!r} appears twice in the catalog file")
        seen.add(e.key)
        attributes: dict[str, EventAttribute] = {}
        for a in e.attributes:
            if problem := event_attribute_key_error(e.key, a.key):
                raise InvalidInput(problem)
            if a.key in attributes:
                raise InvalidInput(f"event {e.key!r}, attribute {a.key!r} appears twice")
            attributes[a.key] = EventAttribute(a.key, a.name, a.type, a.name_en)
        events.append(EventDefinition(e.key, e.name, e.name_en, e.description, attributes))
    if problem := attribute_type_conflict(events):
        raise InvalidInput(problem)
    return events


@dataclass(frozen=True)
class CatalogSnapshot:
    """The catalog by key, and the version it was read at."""

    version: tuple[int, object]
    by_key: dict[str, CatalogEntry]


# Checks the catalog's computed tags (tagport.computes.check_catalog, above this package:
# the composition root passes it in): the whole catalog after an apply and the event
# catalog (event key -> attribute key -> type); raises InvalidInput to refuse the apply.
ComputeCheck = Callable[[list[CatalogEntry], Mapping[str, Mapping[str, ValueType]]], object]


def _no_compute_check(entries: list[CatalogEntry],
                      events: Mapping[str, Mapping[str, ValueType]]) -> None:
    for entry in entries:
        if entry.compute is not None:
            raise InvalidInput(f"{entry.key}: compute: this catalog service checks no"
                               " computed tags (it was built without tagport.computes)")


class CatalogService:
    def __init__(self, engine: Engine, *, check_computes: ComputeCheck = _no_compute_check
                 ) -> None:
        self.engine = engine
        self.check_computes = check_computes
        self._cached: CatalogSnapshot | None = None
        self._cache_lock = threading.Lock()

    def apply(self, entries: list[CatalogEntry],
              events: list[EventDefinition] | None = None) -> ApplyReport:
        """Add new entries and events and update names/descriptions and definitions, all
        or nothing: a computed tag whose definition does not check refuses the whole
        apply (events first, so a definition may name an event of the same file)."""
        report = ApplyReport()
        with self.engine.begin() as conn:
            _apply_events(conn, events or [], report)
            for entry in entries:
                old = repository.get_entry(conn, entry.key)
                if old is None:
                    repository.insert_entry(conn, entry)
                    report.added.append(entry.key)
                    continue
                if old.kind is not entry.kind:
                    raise Conflict(f"{entry.key}: is a {old.kind.value}, not a {entry.kind.value}")
                if old.type_label != entry.type_label and old.has_data:
                    raise Conflict(
                        f"{entry.key}: cannot change type from {old.type_label} to "
                        f"{entry.type_label}: the key already holds data",
                        code="TYPE_CHANGE_REFUSED",
                    )
                if _same(old, entry):
                    report.unchanged.append(entry.key)
                else:
                    repository.update_entry(conn, entry)
                    report.updated.append(entry.key)
            # the catalog as it would be: a tier may read a tag this file does not name
            self.check_computes(repository.list_entries(conn), repository.event_catalog(conn))
        return report

    def list(self) -> list[CatalogEntry]:
        with self.engine.connect() as conn:
            return repository.list_entries(conn)

    def by_key(self) -> dict[str, CatalogEntry]:
        return {e.key: e for e in self.list()}

    def event_catalog(self) -> dict[str, dict[str, ValueType]]:
        """Event key -> attribute key -> type, as conditions and computed tags read it."""
        with self.engine.connect() as conn:
            return repository.event_catalog(conn)

    def snapshot(self, conn: Connection | None = None) -> CatalogSnapshot:
        """The catalog as it is now, for validating requests: kept between calls and read
        again only when its version (entries, newest `updated_at`) moved, which every
        apply does, from any process. `has_data` may be stale here: use `by_key` for it."""
        if conn is None:
            with self.engine.connect() as own:
                return self.snapshot(own)
        version = repository.version(conn)
        cached = self._cached
        if cached is not None and cached.version == version:
            return cached
        fresh = CatalogSnapshot(version, {e.key: e for e in repository.list_entries(conn)})
        with self._cache_lock:
            self._cached = fresh
        return fresh

    def last_snapshot(self) -> CatalogSnapshot:
        """The snapshot last read, without asking the store (the first call reads it);
        check it against `snapshot()` inside the transaction that relies on it."""
        return self._cached or self.snapshot()

    def events(self) -> dict[str, EventDefinition]:
        """The event catalog by event key, in catalog order."""
        with self.engine.connect() as conn:
            return {e.key: e for e in repository.list_events(conn)}

    def get(self, key: str) -> CatalogEntry | None:
        with self.engine.connect() as conn:
            return repository.get_entry(conn, key)

    def segment(self, key: str) -> Segment | None:
        """The segment named by a `seg_` key (of any project); None for other keys."""
        if not is_segment_key(key):
            return None
        with self.engine.connect() as conn:
            return segment_repository.by_key(conn, key)

    def mark_has_data(self, keys: list[str]) -> None:
        with self.engine.begin() as conn:
            repository.mark_has_data(conn, keys)


def _apply_events(conn: Connection, events: list[EventDefinition], report: ApplyReport) -> None:
    """Add new events, rename and extend known ones; an attribute key keeps one type
    across the stored events and the file's (refused otherwise)."""
    stored = {e.key: e for e in repository.list_events(conn)}
    merged = dict(stored)
    for event in events:
        old = stored.get(event.key)
        attributes = {**(old.attributes if old else {}), **event.attributes}
        merged[event.key] = EventDefinition(event.key, event.name, event.name_en,
                                            event.description, attributes)
    if problem := attribute_type_conflict(merged.values()):
        raise Conflict(problem, code="EVENT_ATTRIBUTE_TYPE_CONFLICT")
    for event in events:
        old = stored.get(event.key)
        if old is None:
            repository.insert_event(conn, event)
            report.added.append(event.key)
        elif merged[event.key] == old:
            report.unchanged.append(event.key)
        else:
            repository.update_event(conn, event, old)
            report.updated.append(event.key)


def _same(a: CatalogEntry, b: CatalogEntry) -> bool:
    return (a.name, a.name_en, a.description, a.type_label, a.compute, a.scheduler) == (
        b.name, b.name_en, b.description, b.type_label, b.compute, b.scheduler,
    )
