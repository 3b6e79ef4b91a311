"""What merge-on-read costs an export (issue 13, item 3): the same export with the Spark
store's deltas and without, side by side in one run.

    PYTHONPATH=src:. .venv/bin/python bench/spark_delta_export_bench.py --users 1000000

bench/spark_bench.py's users and 1% files. One Spark dataset is loaded in full, then copied
(hard links) into a second store whose policy never writes a delta; each 1% load
(`spread`, then `recent`) goes into both, so they hold the same users, (A) with one and
then two delta files, (B) in rewritten buckets only. In each state the csv and json
exports of tag_rfm alternate between A and B (the first round warms up and is not
counted), and every file of A is checked against B's and the DuckDB engine's (the same
loads applied to it): the same bytes. The table gives medians and A / B. Writes
bench/results/<date>-spark-delta-export-<N>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _common import RESULTS_DIR, log, machine_lines, table  # noqa: E402
from spark_bench import SHAPES, _catalog, prepare_files  # noqa: E402
from spark_export_bench import _digest, _plan  # noqa: E402

FORMATS = ["csv", "json"]


def _link_copy(source: Path, target: Path) -> None:
    shutil.copytree(source, target, copy_function=os.link)


def _export(engine, catalog, fmt: str, out: Path) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t = time.perf_counter()
    files = engine.export(_plan(catalog, fmt), out, f"f.{fmt}").files
    seconds = time.perf_counter() - t
    digest = _digest(files, fmt)
    shutil.rmtree(out)
    return seconds, digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="counted rounds (one more warms up)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "data" / "spark-delta")
    args = parser.parse_args()

    from tagport.config import Settings
    from tagport.engines.base import InputFormat
    from tagport.engines.duckdb.engine import DuckDBEngine
    from tagport.engines.duckdb.store import DuckDBStore
    from tagport.engines.spark.engine import SparkEngine, spark_session
    from tagport.engines.spark.store import DeltaPolicy, ProfileStore

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    files = prepare_files(args.work, args.users)
    catalog = _catalog(args.work)
    spark = spark_session("local[2]", Settings(spark_master="local[2]").driver_memory)
    spark.sparkContext.setLogLevel("ERROR")
    a = SparkEngine(spark, ProfileStore(args.work / "a"))
    report = a.load(files["parquet"], InputFormat.PARQUET, catalog)
    assert report.applied, report.rejects[:3]
    _link_copy(args.work / "a", args.work / "b")
    b = SparkEngine(spark, ProfileStore(args.work / "b",
                                        deltas=DeltaPolicy(factor=float("inf"))))
    duck = DuckDBEngine(DuckDBStore(args.work / "profiles.duckdb", threads=2))
    rows, same = [], True
    for state in ["no load", *SHAPES]:
        if state != "no load":
            for engine in (a, b, duck):
                assert engine.load(files[state], InputFormat.PARQUET, catalog).applied
        deltas = len(a.store.current().deltas())  # type: ignore[union-attr]
        for fmt in FORMATS:
            times: dict[str, list[float]] = {"a": [], "b": []}
            _, reference = _export(duck, catalog, fmt, args.work / "out-duckdb")
            for n in range(args.rounds + 1):
                for name, engine in (("a", a), ("b", b)):
                    seconds, digest = _export(engine, catalog, fmt, args.work / f"out-{name}")
                    same = same and digest == reference
                    if n:
                        times[name].append(seconds)
            ta, tb = statistics.median(times["a"]), statistics.median(times["b"])
            rows.append([state, str(deltas), fmt, f"{tb:.2f}", f"{ta:.2f}", f"{ta / tb:.2f}x"])
            log(f"{state} {fmt}: buckets only {tb:.2f} s, with {deltas} delta(s) {ta:.2f} s")
    for engine in (a, b, duck):
        engine.close()
    report_text = "\n".join([
        f"Spark exports of tag_rfm at {args.users:,} users, local[2], medians of {args.rounds}"
        " rounds alternating (A) the store with deltas and (B) the same users in buckets"
        " only; after the full load, then after the 1% spread and recent loads.", "",
        *machine_lines(("pyspark", "pyarrow", "duckdb")), "",
        table(["after", "deltas in A", "format", "(B) buckets only s", "(A) with deltas s",
               "A / B"], rows), "",
        "Every file of A the same bytes as B's and the DuckDB engine's: "
        + ("yes" if same else "**NO**")])
    print(report_text)
    out = RESULTS_DIR / f"{dt.date.today()}-spark-delta-export-{args.users}.md"
    out.write_text(report_text + "\n", encoding="utf-8")
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
