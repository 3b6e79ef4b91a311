"""The Spark engine's events: a Parquet dataset partitioned by day beside the profiles.

```
<profile path>/events/dt=2026-11-20/v000004-00000.parquet   a load's files of one day
<profile path>/v000004/manifest.json   "events": {"files": [...], "columns": {...},
                                        "max_seq": 41, "rows": 35}
```

Columns (engines/base.py's layout): `gio_id` bigint, `event` string, `time` timestamp_ntz
(UTC), `dt` date (the directory: Spark's partition column), `id` string, `seq` bigint, then
one column per attribute key the loads brought (`columns`, typed by the event catalog).

Commit: a load writes its files in its staging folder, moves them into `events/dt=.../`
(named after its version) and lists them in the manifest of the profile version it
commits; CURRENT switching to that version is the one commit point, so a reader sees the
load's events, its new users and their identity values together, or none of them. Files
that no manifest lists (a load that failed after moving them) are never read. Event files
are never rewritten or removed, so a reader needs no lease: `read_events` reads the files
that the current version lists.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from tagport.engines.spark.render import quote_ident
from tagport.engines.spark.store import ProfileStore

EVENT_COLUMNS = {"gio_id": "bigint", "event": "string", "time": "timestamp_ntz",
                 "dt": "date", "id": "string", "seq": "bigint"}
_DAY = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})/")


def events_root(store: ProfileStore) -> Path:
    return store.root / "events"


def committed(store: ProfileStore) -> dict[str, Any] | None:
    """The current version's `events` entry (None: no event committed yet)."""
    version = store.current()
    if version is None:
        return None
    events = version.manifest().get("events")
    return events if events and events["files"] else None


def day_of(file: str) -> date:
    """The day of an event file from its `dt=` folder."""
    found = _DAY.search(file)
    if found is None:
        raise ValueError(f"{file}: not in a dt=YYYY-MM-DD folder")
    return date.fromisoformat(found.group(1))


def files_of(store: ProfileStore, events: dict[str, Any],
             days: Collection[date] | None = None) -> list[Path]:
    """The committed event files (of `days` only, when given)."""
    return [store.root / f for f in events["files"] if days is None or day_of(f) in days]


def schema_ddl(columns: dict[str, str]) -> str:
    """The events' columns, the attributes after the fixed ones, as a DDL schema string."""
    fields = {**EVENT_COLUMNS, **columns}
    return ", ".join(f"{quote_ident(name)} {kind}" for name, kind in fields.items())


def read_events(spark: SparkSession, store: ProfileStore, *,
                days: Collection[date] | None = None) -> DataFrame | None:
    """The committed events with exactly the layout's columns, in its order (attribute
    columns a file lacks are null); `days` reads only those days' files. None when no
    event has been committed."""
    events = committed(store)
    if events is None:
        return None
    ddl = schema_ddl(events["columns"])
    files = files_of(store, events, days)
    if not files:
        return spark.createDataFrame([], ddl)
    frame = (spark.read.schema(ddl).option("basePath", str(events_root(store)))
             .parquet(*(str(f) for f in files)))
    return frame.select(*(quote_ident(c) for c in {**EVENT_COLUMNS, **events["columns"]}))


def events_or_empty(spark: SparkSession, store: ProfileStore) -> DataFrame:
    """`read_events`, or no rows of the fixed columns before any event is committed (what
    computed tags read)."""
    frame = read_events(spark, store)
    return frame if frame is not None else spark.createDataFrame([], schema_ddl({}))
