"""All SQL on catalog entries and on the event catalog."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tagport.catalog.models import CatalogEntry, EventAttribute, EventDefinition, Kind, ValueType
from tagport.db import catalog_entries as t
from tagport.db import event_attributes, event_definitions
from tagport.db import event_attributes as ea
from tagport.db import event_definitions as ed


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


# --- the event catalog -------------------------------------------------------------------


def list_events(conn: Connection) -> list[EventDefinition]:
    """Every event with its attributes, each in catalog order."""
    attributes: dict[str, dict[str, EventAttribute]] = {}
    for row in conn.execute(sa.select(ea).order_by(ea.c.event_key, ea.c.position)):
        attributes.setdefault(row.event_key, {})[row.key] = EventAttribute(
            row.key, row.name, ValueType(row.value_type), row.name_en)
    return [
        EventDefinition(row.key, row.name, row.name_en, row.description,
                        attributes.get(row.key, {}))
        for row in conn.execute(sa.select(ed).order_by(ed.c.position))
    ]


def insert_event(conn: Connection, event: EventDefinition) -> None:
    now = datetime.now(UTC)
    position = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(ed.c.position), 0))).scalar_one()
    conn.execute(ed.insert().values(
        key=event.key, name=event.name, name_en=event.name_en, description=event.description,
        position=position + 1, created_at=now, updated_at=now))
    put_event_attributes(conn, event.key, {}, event.attributes)


def update_event(conn: Connection, event: EventDefinition,
                 stored: EventDefinition) -> None:
    """Rename and describe `event` again; add its new attributes, update changed ones
    (attributes the file no longer lists stay, as catalog entries do)."""
    conn.execute(ed.update().where(ed.c.key == event.key).values(
        name=event.name, name_en=event.name_en, description=event.description,
        updated_at=datetime.now(UTC)))
    put_event_attributes(conn, event.key, stored.attributes, event.attributes)


def put_event_attributes(conn: Connection, event_key: str,
                         stored: Mapping[str, EventAttribute],
                         wanted: Mapping[str, EventAttribute]) -> None:
    position = len(stored)
    for attribute in wanted.values():
        values = dict(name=attribute.name, name_en=attribute.name_en,
                      value_type=attribute.value_type.value)
        old = stored.get(attribute.key)
        if old is None:
            position += 1
            conn.execute(ea.insert().values(event_key=event_key, key=attribute.key,
                                            position=position, **values))
        elif old != attribute:
            conn.execute(ea.update().where(ea.c.event_key == event_key,
                                           ea.c.key == attribute.key).values(**values))


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
