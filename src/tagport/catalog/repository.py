"""All SQL on catalog entries."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagport.catalog.models import CatalogEntry, Kind, ValueType
from tagport.db import catalog_entries as t
from tagport.db import event_attributes, event_definitions


def _entry(row: sa.Row) -> CatalogEntry:
    return CatalogEntry(
        key=row.key,
        kind=Kind(row.kind),
        name=row.name,
        value_type=ValueType(row.value_type),
        is_array=bool(row.is_array),
        description=row.description,
        name_en=row.name_en,
        has_data=bool(row.has_data),
        compute=row.compute,
        scheduler=row.scheduler,
    )


def list_entries(conn: Connection) -> list[CatalogEntry]:
    rows = conn.execute(sa.select(t).order_by(t.c.position))
    return [_entry(r) for r in rows]


_VERSION = sa.select(sa.func.count(), sa.func.max(t.c.updated_at))


def version(conn: Connection) -> tuple[int, object]:
    """What changes whenever an entry is added or renamed: (entries, newest updated_at)."""
    count, newest = conn.execute(_VERSION).one()
    return int(count), newest


def get_entry(conn: Connection, key: str) -> CatalogEntry | None:
    row = conn.execute(sa.select(t).where(t.c.key == key)).first()
    return _entry(row) if row else None


def insert_entry(conn: Connection, entry: CatalogEntry) -> None:
    now = datetime.now(UTC)
    position = conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.position), 0))).scalar_one()
    conn.execute(
        t.insert().values(
            key=entry.key, kind=entry.kind.value, name=entry.name, name_en=entry.name_en,
            value_type=entry.value_type.value, is_array=entry.is_array,
            description=entry.description, has_data=False, position=position + 1,
            created_at=now, updated_at=now, compute=entry.compute, scheduler=entry.scheduler,
        )
    )


def update_entry(conn: Connection, entry: CatalogEntry) -> None:
    conn.execute(
        t.update().where(t.c.key == entry.key).values(
            name=entry.name, name_en=entry.name_en, value_type=entry.value_type.value,
            is_array=entry.is_array, description=entry.description,
            compute=entry.compute, scheduler=entry.scheduler, updated_at=datetime.now(UTC),
        )
    )


def mark_has_data(conn: Connection, keys: list[str]) -> None:
    if keys:
        conn.execute(
            t.update().where(t.c.key.in_(keys), t.c.has_data.is_(False)).values(has_data=True)
        )


def event_catalog(conn: Connection) -> dict[str, dict[str, ValueType]]:
    """The event catalog as computed tags read it: event key -> attribute key -> type
    (an event without attributes maps to an empty dict)."""
    events = event_definitions
    catalog: dict[str, dict[str, ValueType]] = {
        row.key: {} for row in conn.execute(sa.select(events.c.key).order_by(events.c.position))}
    rows = conn.execute(sa.select(event_attributes).order_by(event_attributes.c.position))
    for row in rows:
        catalog.setdefault(row.event_key, {})[row.key] = ValueType(row.value_type)
    return catalog
