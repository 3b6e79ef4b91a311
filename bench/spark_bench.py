"""Export time on Spark vs DuckDB, and on a Spark standalone cluster with 1 and 2 executors.

    .venv/bin/python bench/spark_bench.py --users 1000000

The users of bench/export_bench.py (20 properties, tag_rfm covering ~70%) are loaded
once with the DuckDB engine; the Spark dataset is the same table written as one Parquet
version (bench-side conversion: array tags from JSON text to lists). Each configuration
runs in a fresh child process (Spark allows one session per process) that times its
session start apart from the exports; every Spark file is checked byte for byte against
DuckDB's. Prints a Markdown table and writes it to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
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

CASES = [("csv", "key"), ("json", "key")]


def _catalog(work: Path):  # type: ignore[no-untyped-def]
    from tagport.catalog.service import entries_from_file, read_catalog_file

    return {e.key: e for e in entries_from_file(read_catalog_file(work / "catalog.json"))}


def _plan(catalog, fmt: str, header: str):  # type: ignore[no-untyped-def]
    from export_bench import EXPORT_TAG, PROPERTIES

    from tagport.engines.base import ExportPlan, FileFormat, HeaderType

    return ExportPlan(catalog[EXPORT_TAG], tuple(catalog[k] for k in PROPERTIES),
                      FileFormat(fmt), HeaderType(header))


def prepare(work: Path, users: int) -> None:
    """Users loaded by the DuckDB engine, and the same table as a Spark dataset version."""
    import duckdb
    from export_bench import generate

    from tagport.engines.base import InputFormat
    from tagport.engines.duckdb.engine import DuckDBEngine
    from tagport.engines.duckdb.store import DuckDBStore
    from tagport.engines.spark.store import spark_type

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
    con.execute(f"COPY (SELECT {', '.join(select)} FROM users ORDER BY gio_id)"
                f" TO '{version}/users/part-00000.parquet' (FORMAT PARQUET)")
    con.execute("COPY (SELECT id_key, id_value, CAST(gio_id AS BIGINT) AS gio_id"
                f" FROM identity_map) TO '{version}/identity_map/part-00000.parquet'"
                " (FORMAT PARQUET)")
    count, top = con.execute("SELECT count(*), max(gio_id) FROM users").fetchall()[0]
    identities = con.execute("SELECT count(*) FROM identity_map").fetchall()[0][0]
    con.close()
    (version / "manifest.json").write_text(json.dumps(
        {"users": count, "identities": identities, "max_gio_id": int(top)}))
    (work / "profiles.parquet" / "CURRENT").write_text("v000001\n")


def child(work: Path, engine_name: str, master: str, repeat: int) -> None:
    """Run in a fresh process: time the engine's start and each export; print JSON."""
    catalog = _catalog(work)
    t0 = time.perf_counter()
    if engine_name == "duckdb":
        from tagport.engines.duckdb.engine import DuckDBEngine
        from tagport.engines.duckdb.store import DuckDBStore

        engine = DuckDBEngine(DuckDBStore(work / "profiles.duckdb", threads=2))
    else:
        from tagport.engines.spark.engine import SparkEngine, spark_session
        from tagport.engines.spark.store import ProfileStore

        spark = spark_session(master)
        spark.sparkContext.setLogLevel("ERROR")
        engine = SparkEngine(spark, ProfileStore(work / "profiles.parquet"))
    result: dict = {"start": time.perf_counter() - t0}
    for fmt, header in CASES:
        times = []
        for attempt in range(repeat):
            out = work / "out" / f"{engine_name}-{fmt}-{attempt}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            t = time.perf_counter()
            output = engine.export(_plan(catalog, fmt, header), out, f"f.{fmt}")
            times.append(time.perf_counter() - t)
            digest = hashlib.sha256(output.files[0].read_bytes()).hexdigest()
            size = output.files[0].stat().st_size
            shutil.rmtree(out)
        result[fmt] = {"seconds": statistics.median(times), "rows": output.row_count,
                       "bytes": size, "sha256": digest}
    engine.close()
    print(json.dumps(result))


def run_child(work: Path, engine_name: str, master: str, repeat: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", engine_name, "--master", master,
                           "--work", str(work), "--repeat", str(repeat)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "data" / "spark")
    parser.add_argument("--child", choices=["duckdb", "spark"])
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    if args.child:
        child(args.work, args.child, args.master, args.repeat)
        return
    from tests.spark_cluster import standalone_cluster

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    t = time.perf_counter()
    prepare(args.work, args.users)
    print(f"prepared {args.users} users in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    runs = {"DuckDB, 2 threads": run_child(args.work, "duckdb", "", args.repeat),
            "Spark local[2]": run_child(args.work, "spark", "local[2]", args.repeat)}
    for executors in (1, 2):
        with standalone_cluster(workers=executors, cores=1, memory="2g") as cluster:
            runs[f"Spark standalone, {executors} executor(s) x 1 core"] = run_child(
                args.work, "spark", cluster.url, args.repeat)
    report = _table(runs, args.users)
    print(report)
    out = ROOT / "bench" / "results" / f"{dt.date.today()}-spark-{args.users}.md"
    out.write_text(report + "\n", encoding="utf-8")
    shutil.rmtree(args.work, ignore_errors=True)


def _table(runs: dict[str, dict], users: int) -> str:
    base = runs["DuckDB, 2 threads"]
    lines = [f"Export of tag_rfm, 20 properties, {users:,} users"
             f" ({base['csv']['rows']:,} rows); medians of the runs in one process.", "",
             "| engine | start (s) | CSV (s) | CSV rows/s | JSON (s) | JSON rows/s |"
             " vs DuckDB CSV | same bytes |",
             "|---|---|---|---|---|---|---|---|"]
    for name, run in runs.items():
        same = all(run[f]["sha256"] == base[f]["sha256"] for f, _ in CASES)
        csv, js = run["csv"], run["json"]
        lines.append(
            f"| {name} | {run['start']:.1f} | {csv['seconds']:.2f} |"
            f" {csv['rows'] / csv['seconds'] / 1e3:,.0f} k | {js['seconds']:.2f} |"
            f" {js['rows'] / js['seconds'] / 1e3:,.0f} k |"
            f" {csv['seconds'] / base['csv']['seconds']:.1f}x | {'yes' if same else 'NO'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
