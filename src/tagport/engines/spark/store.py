"""The Spark engine's profile store: a versioned Parquet dataset on a shared POSIX path.

```
<profile path>/
  CURRENT                 the current version's name, e.g. `v000003` (switched by os.replace)
  v000003/users/          one row per user in buckets of gio_id ranges: b000000.parquet
                          holds gio_ids 1..S, b000001.parquet S+1..2S, ... (each file in
                          ascending gio_id order); _buckets.json {"users_per_bucket": S}
  v000003/users_delta/    merge-on-read: files of the complete new rows of the users a spread
                          load changed (v000002.parquet, ...), listed oldest first in the
                          manifest's `deltas`; a user's row is its row in the newest delta
                          holding its gio_id, else its bucket's (`read_users`)
  v000003/identity_map/   Parquet (id_key, id_value, gio_id): each pair has one user; a
                          file per load that mapped new values (<version>-00000.parquet)
  v000003/manifest.json   row counts, written before CURRENT names the version; and the
                          committed event files (`events`, see events.py)
  events/dt=2026-11-20/   the events' Parquet files, by day; only those a version's
                          manifest lists are committed
  leases/v000003.<uuid>   one per running reader of v000003
  .write.lock             flock'd by the one writer
```

A load writes a complete new version beside the current one and then replaces `CURRENT`
atomically, so a reader sees the old version or the new one, never half a load. Readers
(exports) take a lease on the version they read; after each commit the writer removes
versions that are not current and have no live lease (a lease older than
`LEASE_EXPIRY_SECONDS` is from a reader that died).

A version is complete, but it shares files with the one before: a load rewrites only the
buckets holding the users it changes or creates (`write_user_buckets`), and the other
buckets' files are hard links to the current version's (`link_files`; a copy where the
file system has no hard links); the identity map gains one file of the new pairs and
links the others (rewritten whole once it holds `IDENTITY_FILES_MAX` files). Files never
change once written, so removing an old version only drops its links. A load that adds a
column or changes a type, a computed tag (a column for all users) and the first load on a
dataset written before buckets (`part-*.parquet`) rewrite every bucket. On a real
cluster a table format (Delta Lake, Apache Iceberg) would take this role: its `MERGE`
rewrites the touched files and commits through its log; `ProfileStore` and the two
writers here are the seam where it would go.

Merge-on-read (`DeltaPolicy`): a load whose changed users are few beside the users of the
buckets they fall in (spread over all gio_ids, the buckets would hold more than
`factor` times the changed rows) writes those users' new rows as one delta file and links
every bucket and earlier delta; readers merge (`read_users`). When the deltas together
would exceed `max_share` of the users or `max_files` files, the load compacts: it rewrites
the buckets the deltas and the load touch, and the new version has no delta. A load that
rewrites buckets takes the deltas' rows of those buckets into them, and the deltas holding
such rows are rewritten without them. A computed tag and a schema change (which rewrite
every bucket) fold every delta in.

Columns (`users`): `gio_id` BIGINT; identities STRING with the user's values joined by
`||` (the export's form; `identity_map` holds them one by one); attributes and scalar
tags typed (BIGINT, DOUBLE, BOOLEAN, DATE, TIMESTAMP_NTZ, STRING); array tags as Parquet
lists of their type (an empty array is stored as NULL). A column appears when a load first
brings its key. DuckDB reads the same files, merged as Spark merges them
(`deltas.duckdb_users_sql`; without a delta, `read_parquet('<version>/users/*.parquet')`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.durable import fsync_path

LEASE_EXPIRY_SECONDS = 24 * 3600
_VERSION = re.compile(r"^v(\d{6,})$")
# 100,000 users are ~15 MB of Parquet at 20 properties: a 10M-user dataset is 100 files
USERS_PER_BUCKET = 100_000
BUCKETS_FILE = "_buckets.json"  # Spark and DuckDB's `*.parquet` leave it out
_BUCKET = re.compile(r"^b(\d{6,})(?:-\d+)?\.parquet$")
IDENTITY_FILES_MAX = 32
DELTAS = "users_delta"

SPARK_TYPES: dict[ValueType, str] = {
    ValueType.STRING: "string",
    ValueType.INT: "bigint",
    ValueType.DOUBLE: "double",
    ValueType.BOOL: "boolean",
    ValueType.DATE: "date",
    ValueType.DATETIME: "timestamp_ntz",
}


def spark_type(entry: CatalogEntry) -> str:
    """The Spark SQL type of the column that holds `entry`'s values."""
    if entry.is_identity:
        return "string"
    scalar = SPARK_TYPES[entry.value_type]
    return f"array<{scalar}>" if entry.is_array else scalar


@dataclass(frozen=True)
class DeltaPolicy:
    """When a load writes a delta instead of rewriting buckets, and when it compacts."""

    # a delta when the touched buckets hold more than `factor` times the changed rows:
    # a bucket rewrite costs its rows, a delta its changed rows plus a merge on every read
    factor: float = 4.0
    # compact once the deltas would hold more than this share of the users, or more files
    max_share: float = 0.10
    max_files: int = 8


@dataclass(frozen=True)
class Delta:
    """One delta file of a version: its rows and the buckets they fall in."""

    path: Path
    rows: int
    buckets: frozenset[int]

    def entry(self) -> dict[str, Any]:
        """The manifest's record of it."""
        return {"file": self.path.name, "rows": self.rows, "buckets": sorted(self.buckets)}


@dataclass(frozen=True)
class Version:
    """One complete, immutable version of the dataset."""

    name: str
    path: Path
    # the bucket size of a dataset's first bucketed version (later ones keep theirs)
    users_per_bucket: int = USERS_PER_BUCKET
    delta_policy: DeltaPolicy = DeltaPolicy()

    @property
    def users(self) -> Path:
        return self.path / "users"

    @property
    def identity_map(self) -> Path:
        return self.path / "identity_map"

    @property
    def users_delta(self) -> Path:
        return self.path / DELTAS

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))

    def deltas(self) -> list[Delta]:
        """The version's delta files, oldest first (none for most versions)."""
        return [Delta(self.users_delta / d["file"], int(d["rows"]), frozenset(d["buckets"]))
                for d in self.manifest().get("deltas", [])]

    def buckets(self) -> Buckets | None:
        """The users' bucket files, or None for a version written before buckets."""
        try:
            layout = json.loads((self.users / BUCKETS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        files: dict[int, list[Path]] = {}
        for part in sorted(self.users.glob("*.parquet")):
            match = _BUCKET.match(part.name)
            if match is None:
                return None
            files.setdefault(int(match.group(1)), []).append(part)
        return Buckets(int(layout["users_per_bucket"]), files)


@dataclass(frozen=True)
class Buckets:
    """Bucket n holds the users with gio_id in n*size+1 .. (n+1)*size."""

    size: int
    files: dict[int, list[Path]]

    def expression(self) -> str:
        """The Spark SQL expression of a row's bucket."""
        return f"(gio_id - 1) DIV {self.size}"


class ProfileStore:
    """The dataset's versions, its readers' leases and its one writer."""

    def __init__(self, root: Path, *, users_per_bucket: int = USERS_PER_BUCKET,
                 deltas: DeltaPolicy = DeltaPolicy()) -> None:
        self.root = root
        self.users_per_bucket = users_per_bucket
        self.delta_policy = deltas
        root.mkdir(parents=True, exist_ok=True)
        (root / "leases").mkdir(exist_ok=True)
        self._thread_lock = threading.Lock()

    def current(self) -> Version | None:
        try:
            name = (self.root / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return Version(name, self.root / name, self.users_per_bucket, self.delta_policy)

    @contextmanager
    def reading(self) -> Iterator[Version | None]:
        """The current version, kept on disk until the block ends (None: no data yet)."""
        while True:
            version = self.current()
            if version is None:
                yield None
                return
            lease = self.root / "leases" / f"{version.name}.{uuid.uuid4().hex}"
            lease.touch()
            # the writer removes old versions after switching CURRENT: if it switched
            # before our lease existed, it may not have seen the lease, so read again
            again = self.current()
            if again is not None and again.name == version.name and version.path.is_dir():
                break
            lease.unlink(missing_ok=True)
        try:
            yield version
        finally:
            lease.unlink(missing_ok=True)

    @contextmanager
    def writing(self) -> Iterator[NewVersion]:
        """The one writer (threads and processes): a new version to fill and commit."""
        with self._thread_lock, open(self.root / ".write.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                new = NewVersion(self, self._next_name())
                try:
                    yield new
                finally:
                    if not new.committed:
                        shutil.rmtree(new.path, ignore_errors=True)
                if new.committed:
                    self._remove_unused()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _versions(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if _VERSION.match(p.name))

    def _next_name(self) -> str:
        numbers = [int(_VERSION.match(name).group(1)) for name in self._versions()]  # type: ignore[union-attr]
        return f"v{max(numbers, default=0) + 1:06d}"

    def _remove_unused(self) -> None:
        """Remove versions that are not current and that no live reader holds."""
        current = self.current()
        now = time.time()
        live: set[str] = set()
        for lease in (self.root / "leases").iterdir():
            try:
                if now - lease.stat().st_mtime < LEASE_EXPIRY_SECONDS:
                    live.add(lease.name.split(".", 1)[0])
                else:
                    lease.unlink(missing_ok=True)
            except FileNotFoundError:
                continue
        for name in self._versions():
            if (current is None or name != current.name) and name not in live:
                shutil.rmtree(self.root / name, ignore_errors=True)


class NewVersion:
    """A version being written; `commit` makes it the current one."""

    def __init__(self, store: ProfileStore, name: str) -> None:
        self.version = Version(name, store.root / name, store.users_per_bucket,
                               store.delta_policy)
        self.store = store
        self.root = store.root
        self.committed = False
        self.version.path.mkdir()

    @property
    def name(self) -> str:
        return self.version.name

    def link_profiles(self, current: Version) -> dict[str, Any]:
        """Make `current`'s users (deltas too) and identity map this version's, unchanged:
        hard links (a copy where the file system has none), never a rewrite; the
        manifest's entries that say so."""
        for folder in (current.users, current.identity_map, current.users_delta):
            if folder.is_dir():
                target = self.path / folder.name
                target.mkdir()
                link_files(list(folder.iterdir()), target)
        before = current.manifest()
        kept = {k: before[k] for k in ("users", "identities", "max_gio_id")}
        return {**kept, "deltas": before["deltas"]} if before.get("deltas") else kept

    @property
    def path(self) -> Path:
        return self.version.path

    def commit(self, manifest: dict[str, Any]) -> None:
        """Write the manifest, make the files durable and switch CURRENT to this version.
        A manifest without `events` keeps the current version's (a user load); its
        `deltas` (none when absent) are this version's, never inherited."""
        previous = self.store.current()
        if "events" not in manifest and previous is not None:
            events = previous.manifest().get("events")
            if events is not None:
                manifest = {**manifest, "events": events}
        if not manifest.get("deltas", True):
            manifest = folded(manifest)
        (self.path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        _fsync_tree(self.path)
        tmp = self.root / f".CURRENT.{uuid.uuid4().hex}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / "CURRENT")
        fsync_path(self.root)
        self.committed = True


def link_files(files: list[Path], target: Path) -> None:
    """`files` in `target` under their names: hard links, copies where there are none."""
    for part in files:
        try:
            os.link(part, target / part.name)
        except OSError:
            shutil.copy2(part, target / part.name)


def folded(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` for a version whose buckets hold every user's row: no delta."""
    return {k: v for k, v in manifest.items() if k != "deltas"}


def read_users(spark: SparkSession, version: Version) -> DataFrame:
    """The version's users, one row each: its buckets merged with its deltas (the only
    reader of `users`). Without a delta, exactly the buckets' plain read."""
    users = spark.read.parquet(str(version.users))
    return merge_deltas(spark, users, [d.path for d in version.deltas()])


def merge_deltas(spark: SparkSession, users: DataFrame, deltas: list[Path]) -> DataFrame:
    """`users` with the rows of `deltas` (oldest first) put over them: a user's row is
    the newest delta's that holds its gio_id, else its own."""
    if not deltas:
        return users
    # newest first, each file less the gio_ids of the newer ones: anti-joins against
    # broadcast gio_ids (the deltas are a small share of the users, DeltaPolicy.max_share),
    # so the merge shuffles nothing and each bucket row is one hash probe
    newer: DataFrame | None = None
    rows: list[DataFrame] = []
    for path in reversed(deltas):
        frame = spark.read.schema(users.schema).parquet(str(path))
        rows.append(frame if newer is None
                    else frame.join(F.broadcast(newer), "gio_id", "left_anti"))
        ids = frame.select("gio_id")
        newer = ids if newer is None else newer.unionByName(ids)
    assert newer is not None
    merged = users.join(F.broadcast(newer), "gio_id", "left_anti")
    for frame in rows:
        merged = merged.unionByName(frame)
    return merged


def write_user_buckets(users: DataFrame, target: Path, size: int) -> list[int]:
    """Write `users` (any order) into `target` as one file per bucket of `size` gio_ids,
    each in gio_id order, beside what `target` holds; the buckets written.

    One shuffle by bucket (each bucket in one task, so one file), Spark's Parquet writer
    partitioned by bucket into a scratch folder, then the files renamed into place."""
    scratch = target.parent / f".buckets-{uuid.uuid4().hex}"
    target.mkdir(exist_ok=True)
    bucket = f"(gio_id - 1) DIV {int(size)}"
    try:
        (users.withColumn("_bucket", F.expr(bucket)).repartition("_bucket")
         .sortWithinPartitions("_bucket", "gio_id")
         .write.partitionBy("_bucket").parquet(str(scratch)))
        written = []
        for folder in sorted(scratch.glob("_bucket=*")):
            number = int(folder.name.split("=", 1)[1])
            parts = sorted(folder.glob("part-*.parquet"))
            for k, part in enumerate(parts):
                suffix = f"-{k}" if k else ""
                part.replace(target / f"b{number:06d}{suffix}.parquet")
            written.append(number)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (target / BUCKETS_FILE).write_text(json.dumps({"users_per_bucket": int(size)}),
                                       encoding="utf-8")
    return written


def _fsync_tree(path: Path) -> None:
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_path(Path(folder))
