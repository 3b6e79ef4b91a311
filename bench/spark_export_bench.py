"""Spark exports against Spark's own writers (issue 13, item 2), side by side in one run.

    PYTHONPATH=src:. .venv/bin/python bench/spark_export_bench.py --users 1000000

The users of bench/export_bench.py (20 properties, tag_rfm covering ~70%) become one
Spark dataset version (bench/spark_bench.py's `prepare`; the DuckDB engine's files of the
same data are the byte reference). For csv, json and parquet, each round runs:

(a) the floor: a plain PySpark job in this process's warm local[2] session: read the
    users, keep tag_rfm's, sort by gio_id (`orderBy`), write with Spark's own writer
    (CSV with a header, arrays joined by `||`; JSON lines of gio_id and two nested
    structs, nulls kept; Parquet with identities split into lists);
(b) `SparkEngine.export` in the same session, in-process;
(c) tagport end to end: `tagport serve` with TAGPORT_ENGINE=spark (a Spark driver of
    its own, same master), the export submitted over HTTP, polled until FINISH
    (every 50 ms) and downloaded with curl.

The first round warms both sessions up and is not counted; the table gives the medians
of the other rounds, ratios to the floor and rows/s. Every file of (b) and (c) is checked
against the DuckDB engine's: the same bytes for csv and json, the same table for parquet.
Writes the table to bench/results/<date>-spark-export-<N>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _common import (  # noqa: E402
    RESULTS_DIR,
    create_token,
    fmt_rate,
    log,
    machine_lines,
    start_server,
    table,
    tagport,
)
from export_bench import EXPORT_TAG, PROPERTIES  # noqa: E402
from spark_bench import _catalog, prepare  # noqa: E402

FORMATS = ["csv", "json", "parquet"]
POLL_INTERVAL = 0.05


def _plan(catalog, fmt: str):  # type: ignore[no-untyped-def]
    from tagport.exports.formats import FileFormat, OutputFormat
    from tagport.exports.plan import ExportPlan

    return ExportPlan.for_tag(catalog[EXPORT_TAG], tuple(catalog[k] for k in PROPERTIES),
                              OutputFormat(FileFormat(fmt)))


def _q(key: str) -> str:
    return "`" + key + "`"


def floor(spark, users: Path, catalog, fmt: str, out: Path) -> None:  # type: ignore[no-untyped-def]
    """Spark's own job: read, filter, sort by gio_id, write; the rows written."""
    df = spark.read.parquet(str(users)).where(f"{_q(EXPORT_TAG)} IS NOT NULL")
    entries = [catalog[k] for k in PROPERTIES]
    if fmt == "csv":
        cols = [f"array_join({_q(e.key)}, '||') AS {_q(e.key)}" if e.is_array else _q(e.key)
                for e in entries]
        df.selectExpr("gio_id", *cols).orderBy("gio_id").write.option("header", True) \
            .csv(str(out))
    elif fmt == "json":
        ids = ", ".join(_q(e.key) for e in entries if e.is_identity)
        props = ", ".join(_q(e.key) for e in entries if not e.is_identity)
        df.selectExpr("gio_id", f"struct({ids}) AS identifications",
                      f"struct({props}) AS properties").orderBy("gio_id") \
            .write.option("ignoreNullFields", False).json(str(out))
    else:
        cols = [f"split({_q(e.key)}, '[|][|]') AS {_q(e.key)}" if e.is_identity else _q(e.key)
                for e in entries]
        df.selectExpr("gio_id", *cols).orderBy("gio_id").write.parquet(str(out))


def _digest(files: list[Path], fmt: str) -> object:
    """sha256 of the files' bytes in order; for Parquet, the table they hold."""
    if fmt == "parquet":
        return pa.concat_tables([pq.read_table(p) for p in files]).combine_chunks()
    h = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def _same(a: object, b: object) -> bool:
    return a.equals(b) if isinstance(a, pa.Table) else a == b  # type: ignore[union-attr]


def references(work: Path, catalog) -> dict[str, tuple[int, object]]:  # type: ignore[no-untyped-def]
    """The DuckDB engine's export of each format: (rows, digest)."""
    from tagport.engines.duckdb.engine import DuckDBEngine
    from tagport.engines.duckdb.store import DuckDBStore

    engine = DuckDBEngine(DuckDBStore(work / "profiles.duckdb", threads=2))
    found = {}
    try:
        for fmt in FORMATS:
            out = work / "out" / f"duckdb-{fmt}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            output = engine.export(_plan(catalog, fmt), out, f"f.{fmt}")
            found[fmt] = (output.row_count, _digest(output.files, fmt))
            shutil.rmtree(out)
    finally:
        engine.close()
    return found


def in_process(engine, catalog, fmt: str, out: Path) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    output = engine.export(_plan(catalog, fmt), out, f"f.{fmt}")
    return time.perf_counter() - t, _digest(output.files, fmt)


def over_http(server, fmt: str, out: Path) -> tuple[float, object, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Submit, poll until FINISH, download with curl: (seconds, digest, phases)."""
    body = {"properties": PROPERTIES, "fileFormat": fmt, "csvHeaderType": "key"}
    with httpx.Client(base_url=server.base, headers=server.headers, timeout=600) as http:
        t0 = time.perf_counter()
        r = http.post(f"/v1/api/user_tags/{EXPORT_TAG}/export_jobs", json=body)
        r.raise_for_status()
        job_id = r.json()["id"]
        while (doc := http.get(f"/v1/api/job/result/{job_id}").json())["stage"] != "FINISH":
            if doc["stage"] == "ERROR":
                raise RuntimeError(f"export job {job_id} failed: {doc.get('error')}")
            time.sleep(POLL_INTERVAL)
        t_finished = time.perf_counter()
        files = []
        for n, uri in enumerate(doc["uris"]):
            dest = out / f"{n}.{fmt}"
            subprocess.run(["curl", "-sSf", "-o", str(dest), "-H",
                            f"Authorization: Bearer {server.token}",
                            f"{server.base}/download?file={uri}"], check=True)
            files.append(dest)
        seconds = time.perf_counter() - t0
    started = dt.datetime.fromisoformat(doc["startedAt"]).timestamp()
    finished = dt.datetime.fromisoformat(doc["finishedAt"]).timestamp()
    phases = {"export": finished - started, "download": seconds - (t_finished - t0)}
    shutil.rmtree(server.data_dir / "results" / doc["name"], ignore_errors=True)
    return seconds, _digest(files, fmt), phases


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def run(args: argparse.Namespace) -> str:
    from tagport.config import Settings
    from tagport.engines.spark.engine import SparkEngine, spark_session
    from tagport.engines.spark.store import ProfileStore

    work = args.work
    if not args.reuse:
        _fresh(work)
        t = time.perf_counter()
        prepare(work, args.users)
        tagport(work, "catalog", "apply", str(work / "catalog.json"))
        log(f"prepared {args.users:,} users in {time.perf_counter() - t:.0f} s")
    catalog = _catalog(work)
    refs = references(work, catalog)
    log("DuckDB references: " + ", ".join(f"{f} {r[0]:,} rows" for f, r in refs.items()))

    spark = spark_session(args.master, Settings(spark_master=args.master).driver_memory)
    spark.sparkContext.setLogLevel("ERROR")
    store = ProfileStore(work / "profiles.parquet")
    engine = SparkEngine(spark, store)
    users = store.current().users  # type: ignore[union-attr]

    env = dict(os.environ, TAGPORT_ENGINE="spark", TAGPORT_SPARK_MASTER=args.master)
    token = create_token(work, f"bench-{os.getpid()}")  # --reuse keeps earlier tokens
    server = start_server(work, token, log_path=work / "server.log", env=env)
    times: dict[str, dict[str, list[float]]] = {f: {"a": [], "b": [], "c": [], "export": [],
                                                    "download": []} for f in args.formats}
    same: dict[str, bool] = dict.fromkeys(args.formats, True)
    try:
        for round_ in range(args.repeat + 1):
            for fmt in args.formats:
                t = time.perf_counter()
                floor(spark, users, catalog, fmt, work / "out" / f"floor-{fmt}")
                a = time.perf_counter() - t
                shutil.rmtree(work / "out" / f"floor-{fmt}")
                b, digest_b = in_process(engine, catalog, fmt, _fresh(work / "out" / "b"))
                c, digest_c, phases = over_http(server, fmt, _fresh(work / "out" / "c"))
                ok = _same(digest_b, refs[fmt][1]) and _same(digest_c, refs[fmt][1])
                same[fmt] = same[fmt] and ok
                log(f"round {round_} {fmt}: floor {a:.2f}s, in-process {b:.2f}s, http {c:.2f}s"
                    f" (export {phases['export']:.2f}s, download {phases['download']:.2f}s)"
                    f"{'' if ok else ' BYTES DIFFER'}")
                if round_ == 0:
                    continue  # the warm-up
                for key, value in (("a", a), ("b", b), ("c", c), *phases.items()):
                    times[fmt][key].append(value)
    finally:
        server.stop()
    return _report(args, refs, times, same)


def _report(args: argparse.Namespace, refs: dict[str, tuple[int, object]],
            times: dict[str, dict[str, list[float]]], same: dict[str, bool]) -> str:
    rows = []
    for fmt in args.formats:
        n = refs[fmt][0]
        m = {k: statistics.median(v) for k, v in times[fmt].items()}
        rows.append([fmt, f"{m['a']:.2f}", f"{m['b']:.2f}", f"{m['c']:.2f}",
                     f"{m['export']:.2f} / {m['download']:.2f}",
                     f"{m['b'] / m['a']:.2f}x", f"{m['c'] / m['a']:.2f}x",
                     " / ".join(fmt_rate(n / m[k]) for k in "abc"),
                     "yes" if same[fmt] else "**NO**"])
    return "\n".join([
        f"Spark export of tag_rfm, 20 properties, {args.users:,} users"
        f" ({refs[args.formats[0]][0]:,} rows), master {args.master}; medians of"
        f" {args.repeat} warm rounds (a first round not counted).", "",
        *machine_lines(("pyspark", "pyarrow", "duckdb")), "",
        table(["format", "(a) floor s", "(b) in-process s", "(c) HTTP s",
               "(c) export / download s", "(b)/(a)", "(c)/(a)", "rows/s (a / b / c)",
               "same as DuckDB"], rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "data" / "spark-export")
    parser.add_argument("--reuse", action="store_true", help="the data of an earlier run")
    parser.add_argument("--keep", action="store_true", help="keep the data for --reuse")
    args = parser.parse_args()
    args.formats = args.formats.split(",")
    report = run(args)
    print(report)
    out = RESULTS_DIR / f"{dt.date.today()}-spark-export-{args.users}.md"
    out.write_text(report + "\n", encoding="utf-8")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
