"""The Spark engine at scale: loads and exports, each against its Spark floor (issue 13).

    PYTHONPATH=src:. .venv/bin/python bench/spark_bench.py --users 1000000 \
        [--masters local,standalone1,standalone2] [--repeat 2] [--cases loads]

Data: bench/export_bench.py's users (20 properties, tag_rfm covering ~70%) as a Parquet
file, and two files of 1% of them, identified by their user id, with three tags changed:
`spread` (every 100th user: a daily load's users, over all gio_ids, so every bucket) and
`recent` (the newest 1%: a load of users created lately, a few buckets). The DuckDB engine
loads the users once and exports each format: the byte reference.

Per master (`local[2]`; a standalone cluster of 1 and of 2 executors x 1 core, started
from pyspark's own scripts), in a fresh child process:

- full load: `SparkEngine.load` of the whole file into an empty dataset, against the
  floor: a plain PySpark job that reads the file, numbers the users, joins their identity
  values with the (empty) identity map and writes the users and the pairs as Parquet;
  the engine's phases (DuckDB staging, resolve, users, identity map; a first load of new
  users only: the files its tasks write, first_load.py) timed apart;
- exports (csv, json, parquet) of tag_rfm against Spark's own writers (the floor of
  bench/spark_export_bench.py), every file checked against DuckDB's; a first round of
  each warms the session up (Python workers, the JIT) and is not counted;
- 1% loads, `spread` and `recent`, against their floor: a plain PySpark job that reads
  the 1% file, joins the identity map for the gio_ids, merges the changes into the users
  and writes the whole dataset (what a Parquet dataset without a table format costs);
  their phases too (a load of at most 1M records is resolved during the staging, on the
  driver: driver_resolve.py, timed apart within it).

- with the exports, a csv export once more after the 1% loads (`export csv, after the
  loads`: with the Spark store's deltas, merge-on-read, when the loads wrote them),
  against the same floor on the buckets alone.

Rounds alternate floor and engine; the table gives medians and rows/s. Writes
bench/results/<date>-spark-<N><suffix>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

FORMATS = ["csv", "json", "parquet"]
SHAPES = ["spread", "recent"]
USER_ID = "id_$basic_userId"
CHANGED = ("tag_rfm", "tag_active_days", "tag_ltv")


def _catalog(work: Path):  # type: ignore[no-untyped-def]
    from tagport.catalog.service import entries_from_file, read_catalog_file

    return {e.key: e for e in entries_from_file(read_catalog_file(work / "catalog.json"))}


def prepare(work: Path, users: int) -> None:
    """Users loaded by the DuckDB engine, and the same table as a Spark dataset version."""
    import duckdb
    from export_bench import generate

    from tagport.engines.base import InputFormat
    from tagport.engines.duckdb.engine import DuckDBEngine
    from tagport.engines.duckdb.store import DuckDBStore
    from tagport.engines.spark.store import BUCKETS_FILE, USERS_PER_BUCKET, spark_type

    files = generate(work, users, seed=7)
    catalog = _catalog(work)
    engine = DuckDBEngine(DuckDBStore(work / "profiles.duckdb"))
    report = engine.load(files["parquet"], InputFormat.PARQUET, catalog)
    assert report.applied, report.rejects[:3]
    engine.close()
    con = duckdb.connect(str(work / "profiles.duckdb"), read_only=True)
    version = work / "profiles.parquet" / "v000001"
    (version / "users").mkdir(parents=True)
    (version / "identity_map").mkdir()
    columns = [r[0] for r in con.execute("DESCRIBE users").fetchall()]
    select = ["CAST(gio_id AS BIGINT) AS gio_id"]
    for key in columns[1:]:
        entry = catalog[key]
        if entry.is_array:  # JSON text in DuckDB, a list in the Spark dataset
            inner = spark_type(entry)[len("array<"):-1].upper()
            select.append(f'CAST("{key}" AS {inner}[]) AS "{key}"')
        else:
            select.append(f'"{key}"')
    # the engine's layout (store.py): a file per bucket of USERS_PER_BUCKET gio_ids
    top = con.execute("SELECT max(gio_id) FROM users").fetchall()[0][0]
    for n in range(-(-int(top) // USERS_PER_BUCKET)):
        low, high = n * USERS_PER_BUCKET + 1, (n + 1) * USERS_PER_BUCKET
        con.execute(f"COPY (SELECT {', '.join(select)} FROM users WHERE gio_id BETWEEN"
                    f" {low} AND {high} ORDER BY gio_id)"
                    f" TO '{version}/users/b{n:06d}.parquet' (FORMAT PARQUET)")
    (version / "users" / BUCKETS_FILE).write_text(
        json.dumps({"users_per_bucket": USERS_PER_BUCKET}))
    con.execute("COPY (SELECT id_key, id_value, CAST(gio_id AS BIGINT) AS gio_id"
                f" FROM identity_map) TO '{version}/identity_map/part-00000.parquet'"
                " (FORMAT PARQUET)")
    count, top = con.execute("SELECT count(*), max(gio_id) FROM users").fetchall()[0]
    identities = con.execute("SELECT count(*) FROM identity_map").fetchall()[0][0]
    con.close()
    (version / "manifest.json").write_text(json.dumps(
        {"users": count, "identities": identities, "max_gio_id": int(top)}))
    (work / "profiles.parquet" / "CURRENT").write_text("v000001\n")


def prepare_files(work: Path, users: int) -> dict[str, Path]:
    """The users' file and catalog, the 1% files, and the DuckDB engine's loaded users."""
    import duckdb
    from export_bench import generate

    from tagport.engines.base import InputFormat
    from tagport.engines.duckdb.engine import DuckDBEngine
    from tagport.engines.duckdb.store import DuckDBStore

    files = generate(work, users, seed=7)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW u AS SELECT row_number() OVER () AS n, * FROM"
                f" read_parquet('{files['parquet']}') WHERE \"{USER_ID}\" IS NOT NULL")
    changed = (f"\"{USER_ID}\", CASE WHEN n % 3 = 0 THEN '高' ELSE '低' END AS tag_rfm,"
               " CAST(n % 31 AS BIGINT) AS tag_active_days,"
               " round(n * 0.37 % 20000, 2) AS tag_ltv")
    count = con.execute("SELECT count(*) FROM u").fetchone()[0]  # type: ignore[index]
    step = max(1, round(count / (users / 100)))
    for shape, where in (("spread", f"n % {step} = 0"),
                         ("recent", f"n > {count} - {users // 100}")):
        files[shape] = work / f"load-{shape}.parquet"
        con.execute(f"COPY (SELECT {changed} FROM u WHERE {where} ORDER BY n)"
                    f" TO '{files[shape]}' (FORMAT PARQUET)")
    con.close()
    engine = DuckDBEngine(DuckDBStore(work / "profiles.duckdb"))
    report = engine.load(files["parquet"], InputFormat.PARQUET, _catalog(work))
    assert report.applied, report.rejects[:3]
    engine.close()
    return files


def references(work: Path) -> None:
    """The DuckDB engine's export of each format, kept in work/refs/ for the children."""
    from spark_export_bench import _plan

    from tagport.engines.duckdb.engine import DuckDBEngine
    from tagport.engines.duckdb.store import DuckDBStore

    engine = DuckDBEngine(DuckDBStore(work / "profiles.duckdb", threads=2))
    catalog = _catalog(work)
    try:
        for fmt in FORMATS:
            out = work / "refs" / fmt
            out.mkdir(parents=True)
            engine.export(_plan(catalog, fmt), out, f"f.{fmt}")
    finally:
        engine.close()


def _q(key: str) -> str:
    return "`" + key + "`"


def floor_full_load(spark, file: Path, identity_map: Path, out: Path) -> None:  # type: ignore[no-untyped-def]
    """Read the file, number the users, join their identity values with the identity map,
    write the users and the new pairs."""
    from pyspark.sql import functions as F

    users = spark.read.parquet(str(file)).withColumn(
        "gio_id", F.monotonically_increasing_id() + 1)
    pairs = users.selectExpr(f"'{USER_ID}' AS id_key", f"{_q(USER_ID)} AS id_value", "gio_id"
                             ).where("id_value IS NOT NULL").unionByName(
        users.selectExpr("'id_$basic_deviceId' AS id_key",
                         "explode(`id_$basic_deviceId`) AS id_value", "gio_id"))
    known = spark.read.parquet(str(identity_map))
    fresh = pairs.join(known.select("id_key", "id_value"), ["id_key", "id_value"], "left_anti")
    users.write.parquet(str(out / "users"))
    fresh.write.parquet(str(out / "identity_map"))


def floor_small_load(spark, file: Path, version, out: Path) -> None:  # type: ignore[no-untyped-def]
    """Read the 1% file, find its users' gio_ids in the identity map, merge the changed
    tags into the users, write the whole dataset."""
    from pyspark.sql import functions as F

    changes = spark.read.parquet(str(file))
    ids = spark.read.parquet(str(version.identity_map)).where(f"id_key = '{USER_ID}'")
    found = changes.join(ids.selectExpr("id_value AS uid", "gio_id"),
                         changes[_q(USER_ID)] == F.col("uid")).drop("uid", USER_ID)
    users = spark.read.parquet(str(version.users))
    kept = [c for c in users.columns if c not in CHANGED]
    merged = users.select(*[_q(c) for c in kept]).join(
        found, "gio_id", "left").selectExpr(*[_q(c) for c in users.columns])
    merged.write.parquet(str(out))


class Phases:
    """The engine's load phases, timed by wrapping the functions load.py calls."""

    def __init__(self) -> None:
        from tagport.engines.spark import apply, driver_resolve, load, resolve

        self.seconds: dict[str, float] = {}
        for module, name, label in ((load, "_stage", "stage (DuckDB)"),
                                    (driver_resolve, "resolve_on_driver",
                                     "of which resolve on the driver"),
                                    (resolve, "resolve", "resolve"),
                                    (apply, "_compute_changes", "changes"),
                                    (apply, "_write_users", "users"),
                                    (apply, "_write_identity_map", "identity map"),
                                    (load, "write_first_load", "first load's files")):
            setattr(module, name, self._timed(getattr(module, name), label))

    def _timed(self, function, label: str):  # type: ignore[no-untyped-def]
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t
        return timed

    def take(self) -> dict[str, float]:
        taken, self.seconds = self.seconds, {}
        return taken


def child(work: Path, master: str, repeat: int, cases: str = "all") -> None:
    """Run in a fresh process: the loads and exports on `master`; print JSON."""
    from spark_export_bench import _digest, _plan, _same
    from spark_export_bench import floor as export_floor

    from tagport.config import Settings
    from tagport.engines.base import InputFormat
    from tagport.engines.spark.engine import SparkEngine, spark_session
    from tagport.engines.spark.store import ProfileStore

    catalog = _catalog(work)
    phases = Phases()
    t0 = time.perf_counter()
    spark = spark_session(master, Settings(spark_master=master).driver_memory)
    spark.sparkContext.setLogLevel("ERROR")
    result: dict = {"start": time.perf_counter() - t0, "full": [], "full_floor": [],
                    "phases": [], **{f: [] for f in FORMATS},
                    **{f"{f}_floor": [] for f in FORMATS},
                    **{s: [] for s in SHAPES}, **{f"{s}_floor": [] for s in SHAPES}}
    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    empty_map = scratch / "empty-map"
    spark.createDataFrame([], "id_key string, id_value string, gio_id bigint") \
        .write.parquet(str(empty_map))
    store = None
    for attempt in range(repeat):
        t = time.perf_counter()
        floor_full_load(spark, work / "users.parquet", empty_map, scratch / f"full-{attempt}")
        result["full_floor"].append(time.perf_counter() - t)
        shutil.rmtree(scratch / f"full-{attempt}")
        root = work / f"profiles-{attempt}"
        shutil.rmtree(root, ignore_errors=True)
        store = ProfileStore(root)
        engine = SparkEngine(spark, store)
        phases.take()
        t = time.perf_counter()
        report = engine.load(work / "users.parquet", InputFormat.PARQUET, catalog)
        result["full"].append(time.perf_counter() - t)
        result["phases"].append(phases.take())
        assert report.applied and not report.rejects, report.rejects[:3]
        result["users"] = report.inserted
        if attempt:
            shutil.rmtree(work / f"profiles-{attempt - 1}")
    assert store is not None
    engine = SparkEngine(spark, store)
    exports = FORMATS if cases == "all" else []
    refs = {f: _digest(sorted((work / "refs" / f).iterdir()), f) for f in exports}
    result["same"] = True
    for round_ in range(repeat + 1 if exports else 0):  # round 0 warms up, not counted
        for fmt in FORMATS:
            out = scratch / f"floor-{fmt}"
            with store.reading() as version:
                t = time.perf_counter()
                export_floor(spark, version.users, catalog, fmt, out)  # type: ignore[union-attr]
                floor_s = time.perf_counter() - t
            shutil.rmtree(out)
            out = scratch / f"export-{fmt}"
            out.mkdir(parents=True)
            t = time.perf_counter()
            output = engine.export(_plan(catalog, fmt), out, f"f.{fmt}")
            if round_:
                result[f"{fmt}_floor"].append(floor_s)
                result[fmt].append(time.perf_counter() - t)
            result[f"{fmt}_rows"] = output.row_count
            result["same"] = result["same"] and _same(_digest(output.files, fmt), refs[fmt])
            shutil.rmtree(out)
    for _ in range(repeat):
        for shape in SHAPES:
            out = scratch / f"floor-{shape}"
            with store.reading() as version:
                t = time.perf_counter()
                floor_small_load(spark, work / f"load-{shape}.parquet", version, out)
                result[f"{shape}_floor"].append(time.perf_counter() - t)
            shutil.rmtree(out)
            t = time.perf_counter()
            report = engine.load(work / f"load-{shape}.parquet", InputFormat.PARQUET, catalog)
            result[shape].append(time.perf_counter() - t)
            result[f"{shape}_rows"] = report.updated
            result[f"{shape}_phases"] = phases.take()
            result[f"{shape}_deltas"] = _deltas(store)
            assert report.applied and report.inserted == 0, report.rejects[:3]
    result["after"], result["after_floor"] = [], []
    for _ in range(repeat if exports else 0):  # the same export, the loads' deltas merged
        out = scratch / "floor-after"
        with store.reading() as version:
            t = time.perf_counter()
            export_floor(spark, version.users, catalog, "csv", out)  # type: ignore[union-attr]
            result["after_floor"].append(time.perf_counter() - t)
        shutil.rmtree(out)
        out = scratch / "export-after"
        out.mkdir(parents=True)
        t = time.perf_counter()
        result["after_rows"] = engine.export(_plan(catalog, "csv"), out, "f.csv").row_count
        result["after"].append(time.perf_counter() - t)
        shutil.rmtree(out)
    print(json.dumps(result))


def _deltas(store) -> int:  # type: ignore[no-untyped-def]
    """The current version's delta files (0 before merge-on-read)."""
    version = store.current()
    return len(version.deltas()) if hasattr(version, "deltas") else 0


def run_child(work: Path, master: str, repeat: int, cases: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", "--master", master,
                           "--work", str(work), "--repeat", str(repeat), "--cases", cases],
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{master}: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--masters", default="local,standalone1,standalone2")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "data" / "spark")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--keep", action="store_true", help="keep the data")
    parser.add_argument("--reuse", action="store_true", help="the data of an earlier --keep")
    parser.add_argument("--suffix", default="", help="appended to the result file's name")
    parser.add_argument("--cases", choices=["all", "loads"], default="all",
                        help="loads: the full and 1%% loads only, no exports (results in"
                             " <date>-spark-loads-<N>.md)")
    args = parser.parse_args()
    if args.child:
        child(args.work, args.master, args.repeat, args.cases)
        return
    from _common import log
    from tests.spark_cluster import standalone_cluster

    if not args.reuse:
        shutil.rmtree(args.work, ignore_errors=True)
        args.work.mkdir(parents=True)
        t = time.perf_counter()
        prepare_files(args.work, args.users)
        if args.cases == "all":
            references(args.work)
        log(f"prepared {args.users:,} users in {time.perf_counter() - t:.0f} s")
    runs: dict[str, dict] = {}
    for master in args.masters.split(","):
        if master == "local":
            runs["local[2]"] = run_child(args.work, "local[2]", args.repeat, args.cases)
        else:
            executors = int(master.removeprefix("standalone"))
            with standalone_cluster(workers=executors, cores=1, memory="3g") as cluster:
                runs[f"standalone, {executors} executor(s) x 1 core"] = run_child(
                    args.work, cluster.url, args.repeat, args.cases)
        log(f"{master}: {json.dumps(runs[list(runs)[-1]])}")
    report = _report(runs, args.users, args.repeat)
    print(report)
    name = "spark" if args.cases == "all" else "spark-loads"
    out = ROOT / "bench" / "results" / f"{dt.date.today()}-{name}-{args.users}{args.suffix}.md"
    out.write_text(report + "\n", encoding="utf-8")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


def _report(runs: dict[str, dict], users: int, repeat: int) -> str:
    from _common import fmt_rate, machine_lines, table

    def med(run: dict, key: str) -> float:
        return statistics.median(run[key])

    rows = []
    for name, run in runs.items():
        cases = [("full load", "full", run["users"])]
        cases += [(f"export {f}", f, run[f"{f}_rows"]) for f in FORMATS if run[f]]
        cases += [(f"1% load, {s}", s, run[f"{s}_rows"]) for s in SHAPES]
        if run.get("after"):
            cases.append(("export csv, after the loads", "after", run["after_rows"]))
        for label, key, n in cases:
            subject, floor_ = med(run, key), med(run, f"{key}_floor")
            note = ""
            if key in SHAPES:
                note = (f"{subject / med(run, 'full'):.2f} of the full load;"
                        f" deltas after it: {run.get(f'{key}_deltas', 0)}")
            rows.append([name, label, f"{n:,}", f"{floor_:.1f}", f"{subject:.1f}",
                         f"{subject / floor_:.2f}x", fmt_rate(n / floor_), fmt_rate(n / subject),
                         note])
    phase_lines = []
    for name, run in runs.items():
        full = {k: statistics.median(p[k] for p in run["phases"]) for k in run["phases"][0]}
        for label, ph in (("full load", full), *((f"1% {s}", run[f"{s}_phases"]) for s in SHAPES)):
            phase_lines.append(f"- {name}, {label}: " + ", ".join(
                f"{k} {v:.1f} s" for k, v in ph.items()))
    same = all(run["same"] for run in runs.values())
    exported = any(run[f] for run in runs.values() for f in FORMATS)
    return "\n".join([
        f"Spark engine at {users:,} users (20 properties; exports of tag_rfm); medians of"
        f" {repeat} rounds alternating floor and engine (exports after a warm-up round),"
        " Spark session started once per"
        " master (start: " + ", ".join(f"{n} {r['start']:.0f} s" for n, r in runs.items())
        + ").", "",
        *machine_lines(("pyspark", "pyarrow", "duckdb")), "",
        table(["master", "case", "rows", "floor s", "tagport s", "tagport/floor",
               "floor rows/s", "tagport rows/s", ""], rows), "",
        *(["Every export file the same as the DuckDB engine's: "
           + ("yes" if same else "**NO**"), ""] if exported else []),
        "Where a load's time goes (the engine's phases; the rest is the commit, counts and"
        " the fixed cost of the jobs):", *phase_lines])


if __name__ == "__main__":
    main()
