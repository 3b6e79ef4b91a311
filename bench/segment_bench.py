"""Segments on the DuckDB engine at scale: the live estimate and a members upload.

1. A profile store of `--users` users (gio_id order; id_uid, usr_age, usr_city, tag_level,
   tag_vip) and `--events-per-user` events each on average over the 60 days before the
   compute date (a quarter of them `payOrderSuccess`), written by SQL straight into the
   store's layout (engines/duckdb/store.py), rows ordered by (dt, time, seq) as loads
   append them; kept in `--work` for the next run.
2. `count_members` of a 5-condition definition (age between, city in, tag_level >=,
   tag_vip not null, `did` payOrderSuccess count >= 1 over the last 30 days): exact
   (`--exact` times), then sampled (`--sample` of the users) `--repeat` times: p50, p95,
   the estimate's error against the exact count.
3. `replace_members` of files of 1M and `--upload` identity values (every 11th one
   unknown), each in a child process whose peak RSS (VmHWM, reset after the store
   opens) is read around the call alone: rows/s, and whether memory stays flat.

The store runs with tagport's default settings (2 threads, 128MB for queries, half the
machine's memory for loads and uploads). Prints a Markdown table and writes it to
bench/results/.

    .venv/bin/python bench/segment_bench.py [--users 10000000] [--events-per-user 5]
        [--sample 0.01] [--repeat 20] [--upload 10000000] [--work /tmp/tagport-segment-bench]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from _common import hwm, reset_hwm  # noqa: E402

from tagport.catalog.models import CatalogEntry, Kind, ValueType  # noqa: E402
from tagport.conditions import ConditionContext, parse_condition  # noqa: E402
from tagport.config import Settings  # noqa: E402
from tagport.engines.duckdb.engine import DuckDBEngine  # noqa: E402
from tagport.engines.duckdb.store import DuckDBStore  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
AS_OF = dt.date(2026, 11, 20)
PAY = "payOrderSuccess"
E = CatalogEntry
CATALOG = {e.key: e for e in [
    E("id_uid", Kind.IDENTITY, "用户ID", ValueType.STRING),
    E("usr_age", Kind.ATTRIBUTE, "年龄", ValueType.INT),
    E("usr_city", Kind.ATTRIBUTE, "城市", ValueType.STRING),
    E("tag_level", Kind.TAG, "等级", ValueType.INT),
    E("tag_vip", Kind.TAG, "会员", ValueType.STRING),
]}
DEFINITION = {"op": "and", "exprs": [
    {"key": "usr_age", "op": "between", "values": [25, 45]},
    {"key": "usr_city", "op": "in", "values": ["上海", "北京", "深圳"]},
    {"key": "tag_level", "op": ">=", "values": [1]},
    {"key": "tag_vip", "op": "is not null", "values": []},
    {"did": {"event": PAY, "measure": "count", "window": {"lastDays": 30}},
     "op": ">=", "values": [1]},
]}
MB = 1024 * 1024


def open_store(path: Path) -> DuckDBStore:
    s = Settings()
    return DuckDBStore(path, threads=s.duckdb_threads, memory_limit=s.duckdb_memory_limit,
                       load_memory_limit=s.load_memory_limit,
                       temp_directory=path.parent / "spill")


def build(path: Path, users: int, events_per_user: int) -> None:
    store = open_store(path)
    cur = store.cursor()
    with store.load_memory():
        cur.execute("DROP TABLE users")
        cur.execute(
            "CREATE TABLE users AS SELECT g::UBIGINT AS gio_id, 'u' || g AS id_uid,"
            " CASE WHEN hash(g, 1) % 10 < 9 THEN (18 + hash(g, 2) % 50)::BIGINT END AS usr_age,"
            " (['上海', '北京', '深圳', '广州', '杭州', NULL])[(1 + hash(g, 3) % 6)::BIGINT]"
            " AS usr_city,"
            " (hash(g, 4) % 5)::BIGINT AS tag_level,"
            " CASE WHEN hash(g, 5) % 2 = 0 THEN 'gold' END AS tag_vip"
            f" FROM range(1, {users + 1}) t(g) ORDER BY g")
        cur.execute("INSERT INTO identity_map SELECT 'id_uid', id_uid, gio_id FROM users")
        total = users * events_per_user
        cur.execute(
            "INSERT INTO events SELECT gio_id, event, dt + INTERVAL (s) SECOND AS time, dt,"
            " NULL, i AS seq FROM (SELECT i, (1 + hash(i, 6) % ?)::UBIGINT AS gio_id,"
            f" CASE WHEN i % 4 = 0 THEN '{PAY}' ELSE 'viewPage' END AS event,"
            " (DATE '2026-11-20' - (1 + hash(i, 7) % 60)::INTEGER) AS dt,"
            " hash(i, 8) % 86400 AS s FROM range(?) t(i)) ORDER BY dt, time, seq",
            [users, total])
    cur.execute("CHECKPOINT")
    cur.close()
    store.close()


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def cpu_timed(fn):  # type: ignore[no-untyped-def]
    """(wall seconds, CPU seconds of this process, the value): the CPU time does not
    depend on what else the machine runs."""
    import resource

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, cpu() - c0, value


def bench_counts(path: Path, exact_runs: int, sample: float, repeat: int) -> dict:
    engine = DuckDBEngine(open_store(path))
    condition = parse_condition(DEFINITION, ConditionContext(
        catalog=CATALOG, events={PAY: {}, "viewPage": {}}))
    try:
        exact = [timed(lambda: engine.count_members(condition, as_of=AS_OF))
                 for _ in range(exact_runs)]
        runs = [cpu_timed(lambda: engine.count_members(condition, as_of=AS_OF, sample=sample))
                for _ in range(repeat)]
    finally:
        engine.close()
    seconds = sorted(s for s, _, _ in runs)
    cpu = sorted(c for _, c, _ in runs)
    estimates = {n for _, _, n in runs}
    count = exact[0][1]
    estimate = runs[0][2]
    return {"exact": count, "exact_seconds": min(s for s, _ in exact),
            "estimate": estimate, "estimates_agree": len(estimates) == 1,
            "error": (estimate - count) / count if count else 0.0,
            "p50": statistics.median(seconds),
            "p95": seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))],
            "max": seconds[-1], "cpu_p50": statistics.median(cpu),
            "cpu_p95": cpu[min(len(cpu) - 1, round(0.95 * (len(cpu) - 1)))]}


def write_members_file(path: Path, rows: int, users: int) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {Settings().duckdb_threads}")
    # every 11th value held by no user; the others distinct users in no particular order
    # (7919 is prime to 2 and 5: i * 7919 % users permutes the users of a power of ten)
    con.execute(f"COPY (SELECT CASE WHEN i % 11 = 0 THEN 'nobody' || i"
                f" ELSE 'u' || (1 + i * 7919 % {users}) END AS id_uid"
                f" FROM range({rows}) t(i)) TO '{path}' (HEADER, DELIMITER ',')")
    con.close()


def child_upload(store_path: Path, csv: Path) -> None:
    """In a process of its own: one replace_members, its seconds and peak RSS as JSON."""
    engine = DuckDBEngine(open_store(store_path))
    base = hwm(os.getpid())
    reset = reset_hwm(os.getpid())
    seconds, report = timed(lambda: engine.replace_members(
        CatalogEntry("seg_upload", Kind.TAG, "upload", ValueType.BOOL), "id_uid", csv))
    peak = hwm(os.getpid())
    engine.close()
    print(json.dumps({"seconds": seconds, "values": report.values, "members": report.members,
                      "unknown": report.unknown, "peak_rss": peak, "rss_before": base,
                      "hwm_reset": reset}))


def bench_upload(work: Path, store_path: Path, rows: int, users: int,
                 memory: str | None) -> dict:
    csv = work / f"members-{rows}.csv"
    if not csv.exists():
        write_members_file(csv, rows, users)
    env = dict(os.environ)
    if memory:
        env["TAGPORT_DUCKDB_LOAD_MEMORY_LIMIT"] = memory
    out = subprocess.run([sys.executable, __file__, "--child-upload", str(store_path), str(csv)],
                         check=True, capture_output=True, text=True, env=env).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["rows"] = rows
    result["memory"] = memory or "default (half the RAM)"
    result["file_mb"] = csv.stat().st_size / MB
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--events-per-user", type=int, default=5)
    parser.add_argument("--sample", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--exact", type=int, default=3)
    parser.add_argument("--upload", type=int, default=10_000_000)
    parser.add_argument("--upload-memory", default="512MB",
                        help="also upload under this load memory limit ('' for none)")
    parser.add_argument("--skip-counts", action="store_true")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tagport-segment-bench"))
    parser.add_argument("--child-upload", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_upload:
        child_upload(*args.child_upload)
        return
    work = args.work / f"{args.users}-{args.events_per_user}"
    work.mkdir(parents=True, exist_ok=True)
    store_path = work / "profiles.duckdb"
    if not store_path.exists():
        seconds, _ = timed(lambda: build(store_path, args.users, args.events_per_user))
        print(f"built {args.users} users, {args.users * args.events_per_user} events"
              f" in {seconds:.0f} s", flush=True)
    counts = (None if args.skip_counts
              else bench_counts(store_path, args.exact, args.sample, args.repeat))
    print(json.dumps(counts), flush=True)
    uploads = [bench_upload(work, store_path, rows, args.users, memory)
               for memory in [None, args.upload_memory] if memory != ""
               for rows in sorted({min(1_000_000, args.upload), args.upload})]
    for upload in uploads:
        print(json.dumps(upload), flush=True)
    report = render(args, counts, uploads)
    print(report)
    RESULTS_DIR.mkdir(exist_ok=True)
    name = f"{dt.date.today().isoformat()}-segments-{args.users}.md"
    (RESULTS_DIR / name).write_text(report, encoding="utf-8")


def render(args, counts: dict, uploads: list[dict]) -> str:  # type: ignore[no-untyped-def]
    load = os.getloadavg()[0]
    lines = [
        f"# Segments on DuckDB: {args.users:,} users, {args.users * args.events_per_user:,}"
        " events over 60 days",
        "",
        f"{dt.datetime.now().isoformat(timespec='seconds')}, {os.cpu_count()} cores"
        f" (load average {load:.1f} at the end), tagport's default DuckDB settings"
        f" (2 threads, 128MB for queries). Command: `python bench/segment_bench.py"
        f" --users {args.users} --events-per-user {args.events_per_user} --sample"
        f" {args.sample} --repeat {args.repeat} --upload {args.upload}`",
        "",
        "## count_members, 5 conditions (4 on users, one `did` over 30 days)",
        "",
        *count_lines(args, counts),
        "## replace_members (a child process each; peak RSS during the call alone)",
        "",
        "| load memory limit | identity values | file MB | distinct | members | unknown"
        " | seconds | rows/s | RSS before | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for u in uploads:
        lines.append(
            f"| {u['memory']} | {u['rows']:,} | {u['file_mb']:.0f} | {u['values']:,}"
            f" | {u['members']:,}"
            f" | {u['unknown']:,} | {u['seconds']:.1f} | {u['rows'] / u['seconds']:,.0f}"
            f" | {u['rss_before'] / MB:.0f} MiB | {u['peak_rss'] / MB:.0f} MiB |")
    return "\n".join(lines) + "\n"


def count_lines(args, counts: dict | None) -> list[str]:  # type: ignore[no-untyped-def]
    if counts is None:
        return ["(not run)", ""]
    return [
        "| | users | wall seconds | CPU seconds |",
        "|---|---:|---:|---:|",
        f"| exact (best of {args.exact}) | {counts['exact']:,} | {counts['exact_seconds']:.3f}"
        " | |",
        f"| sample {args.sample:g}: p50 of {args.repeat} | {counts['estimate']:,}"
        f" ({counts['error']:+.2%}) | {counts['p50']:.3f} | {counts['cpu_p50']:.3f} |",
        f"| sample {args.sample:g}: p95 / max | | {counts['p95']:.3f} / {counts['max']:.3f}"
        f" | {counts['cpu_p95']:.3f} (p95) |",
        "",
        f"The {args.repeat} estimates agree: {counts['estimates_agree']}.",
        "",
    ]


if __name__ == "__main__":
    main()
