#!/usr/bin/env python3
"""Benchmark tagport's events load and tag computation against hand-written DuckDB floors.

    .venv/bin/python bench/events_bench.py [--events 5000000] [--users N] [--repeat 3]
        [--work-dir bench/data] [--skip-load] [--skip-compute] [--keep] [--reuse]
        [--no-snapshot]

What it does (issue 11, "Performance"):

1. Generates with the demo's own generator (tagport.demo, seeded) `--users` users
   (default events / 50) and `--events` events over the 90 days before 2026-12-01 UTC,
   sorted by time, times as epoch milliseconds; the demo's catalog plus one bench tag
   (`tag_amount_30d`, a sum over 30 days). `tagport catalog apply` and `tagport load`
   put the users into a base data dir.
2. Events load, side by side, each a whole process (wall, CPU = user + sys, peak RSS
   from wait4), interleaved floor / tagport `--repeat` times, medians reported:
   (a) floor: a fresh DuckDB file, `CREATE TABLE events AS SELECT * ... LIMIT 0`, then a
       bare `INSERT INTO events SELECT * FROM read_parquet(FILE)`, with tagport's DuckDB
       threads and load memory limit;
   (b) tagport: `tagport events load FILE` into a fresh copy of the base data dir (all
       users known: resolution, the id check, days, seq, sorted storage).
3. Computation, in one process on the loaded store (the last (b)), interleaved
   floor / tagport `--repeat` times per tag, medians: for each tag type
   (a) floor: the hand-written DuckDB query of the same values (see FLOORS) into a temp
       table plus the UPDATE that writes them into the users' column, in one
       transaction, on the store's own connection (same threads and memory limit);
   (b) tagport: `Engine.compute_tag` of the catalog's definition (compile, one query,
       the write, the users counted), the tag's column emptied first (untimed): tagport
       writes only the values that change, and would otherwise find the floor's.
   Each timed run starts from a checkpointed store (an untimed CHECKPOINT), so that
   neither pays the automatic checkpoint of the other's WAL.
   Then the demo's whole computed tag set, in dependency order, against the sum of its
   floors; and `tagport compute --as-of` as a whole process for the same set.
4. Prints Markdown tables and writes them to bench/results/<date>-events-<N>.md.

tagport runs from a copy of src/tagport taken at the start (PYTHONPATH) unless
--no-snapshot. The zone is Asia/Shanghai (TAGPORT_TIMEZONE) and the compute date
2026-12-01 throughout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    BENCH_DIR,
    RESULTS_DIR,
    Timed,
    fmt_mib,
    fmt_rate,
    log,
    machine_lines,
    snapshot_source,
    table,
    tagport,
    tagport_command,
)

ZONE = "Asia/Shanghai"
END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
AS_OF = dt.date(2026, 12, 1)
BENCH_TAG = {"key": "tag_amount_30d", "name": "近30天支付金额", "name_en": "Amount paid (30d)",
             "type": "double",
             "compute": {"type": "AGGREGATED", "event": "payOrderSuccess",
                         "measure": {"sum": "amount"}, "window": {"lastDays": 30}}}


def _days(n: int) -> str:
    """`dt` in the n whole days before the compute date."""
    first, last = AS_OF - dt.timedelta(days=n), AS_OF - dt.timedelta(days=1)
    return f"dt BETWEEN DATE '{first}' AND DATE '{last}'"


PAY = "event = 'payOrderSuccess'"
# the hand-written DuckDB query of each tag's values, (gio_id, v)
FLOORS = {
    "tag_paid_30d": ("AGGREGATED count, 30 days",
                     f"SELECT gio_id, count(*) AS v FROM events WHERE {PAY} AND {_days(30)}"
                     " GROUP BY gio_id"),
    "tag_amount_30d": ("AGGREGATED sum, 30 days",
                       f"SELECT gio_id, sum(amount) AS v FROM events WHERE {PAY}"
                       f" AND {_days(30)} GROUP BY gio_id"),
    "tag_amount_7d": ("AGGREGATED sum, 7 days",
                      f"SELECT gio_id, sum(amount) AS v FROM events WHERE {PAY}"
                      f" AND {_days(7)} GROUP BY gio_id"),
    "tag_active_days": ("AGGREGATED days, 30 days",
                        f"SELECT gio_id, count(DISTINCT dt) AS v FROM events WHERE {_days(30)}"
                        " GROUP BY gio_id"),
    "tag_last_purchase": ("ATTRIBUTION last date",
                          f"SELECT gio_id, max(dt) AS v FROM events WHERE {PAY}"
                          f" AND dt < DATE '{AS_OF}' GROUP BY gio_id"),
    "tag_last_category": ("ATTRIBUTION last value",
                          "SELECT gio_id, arg_max(category, {'t': \"time\", 's': seq}) AS v"
                          f" FROM events WHERE {PAY} AND dt < DATE '{AS_OF}'"
                          " AND category IS NOT NULL GROUP BY gio_id"),
    "tag_top_category": ("TOP_N by count, 90 days",
                         "SELECT gio_id, arg_min(category, {'n': -n, 'v': category}) AS v FROM"
                         " (SELECT gio_id, category, count(*) AS n FROM events"
                         f" WHERE event = 'viewItem' AND {_days(90)} AND category IS NOT NULL"
                         " GROUP BY gio_id, category) GROUP BY gio_id"),
    "tag_interests": ("DATA_SET value list, 30 days",
                      "SELECT gio_id, to_json(list_sort(list(DISTINCT category))) AS v"
                      f" FROM events WHERE event = 'addToCart' AND {_days(30)}"
                      " AND category IS NOT NULL GROUP BY gio_id"),
    "tag_value_tier": ("HORIZONTAL, 3 tiers on 30 days",
                       "SELECT u.gio_id, CASE WHEN s.amount >= 2000 THEN '高价值'"
                       " WHEN s.amount >= 500 THEN '中价值' WHEN s.n >= 1 THEN '低价值' END AS v"
                       " FROM users u LEFT JOIN (SELECT gio_id, sum(amount) AS amount,"
                       f" count(*) AS n FROM events WHERE {PAY} AND {_days(30)}"
                       " GROUP BY gio_id) s USING (gio_id)"),
    "tag_paid_30d_sql": ("SQL (GrowingIO's ClickHouse SQL)",
                         f"SELECT gio_id, count(1) AS v FROM events WHERE {PAY}"
                         f" AND {_days(30)} GROUP BY gio_id"),
}
DEMO_SET = [k for k in FLOORS if k != "tag_amount_30d"]


# --- the data ---------------------------------------------------------------------------


def prepare(work: Path, events: int, users: int, reuse: bool) -> tuple[Path, Path]:
    """The events file and a base data dir with the catalog applied and the users loaded."""
    from tagport import demo

    folder = work / f"events-{events}-{users}"
    file, base = folder / "events.parquet", folder / "base"
    if reuse and file.is_file() and (base / "profiles.duckdb").is_file():
        return file, base
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    catalog = dict(demo.CATALOG, tags=[*demo.CATALOG["tags"], BENCH_TAG])
    (folder / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False), "utf-8")
    t = time.perf_counter()
    demo.write_users(folder / "users.parquet", users)
    demo.write_events(file, users, events, end=END)
    log(f"generated {users:,} users and {events:,} events in {time.perf_counter() - t:.0f} s")
    tagport(base, "catalog", "apply", str(folder / "catalog.json"))
    tagport(base, "load", str(folder / "users.parquet"))
    return file, base


# --- the events load --------------------------------------------------------------------


def floor_load(file: Path, db: Path, threads: int, memory_limit: str) -> None:
    """(a): the bare insert, run in a process of its own (`--floor-load`)."""
    import duckdb

    con = duckdb.connect(str(db), config={"threads": threads, "memory_limit": memory_limit,
                                          "temp_directory": str(db.parent / "spill")})
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{file}') LIMIT 0")
    con.execute(f"INSERT INTO events SELECT * FROM read_parquet('{file}')")
    con.close()


def cpu_of(timed: Timed) -> float:
    return timed.cpu


def run_with_cpu(cmd: list[str], env: dict[str, str] | None = None) -> Timed:
    """run_timed, plus the child's CPU seconds (user + sys) from its rusage."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        timed = Timed(seconds, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status),
                      out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))
    if timed.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{timed.stdout}\n{timed.stderr}")
    timed.cpu = usage.ru_utime + usage.ru_stime  # type: ignore[attr-defined]
    return timed


def measure_load(file: Path, base: Path, work: Path, repeat: int, env: dict[str, str]
                 ) -> tuple[dict[str, list[Timed]], Path]:
    from tagport.config import Settings

    settings = Settings()
    threads, limit = settings.duckdb_threads, settings.load_memory_limit
    runs: dict[str, list[Timed]] = {"floor": [], "tagport": []}
    loaded = work / "loaded"
    for i in range(repeat):
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            runs["floor"].append(run_with_cpu(
                [sys.executable, __file__, "--floor-load", str(file), str(Path(tmp) / "f.duckdb"),
                 str(threads), limit], env))
        shutil.rmtree(loaded, ignore_errors=True)
        shutil.copytree(base, loaded)
        runs["tagport"].append(run_with_cpu(
            [*tagport_command(), "--data-dir", str(loaded), "events", "load", str(file)], env))
        log(f"load run {i + 1}: floor {runs['floor'][-1].seconds:.2f} s,"
            f" tagport {runs['tagport'][-1].seconds:.2f} s"
            f" ({runs['tagport'][-1].stdout.strip().splitlines()[-1]})")
    return runs, loaded


# --- the computation --------------------------------------------------------------------


def compute_worker(data_dir: Path, repeat: int) -> None:
    """(`--compute-worker`): floor and tagport per tag, interleaved; JSON on stdout."""
    from tagport.catalog.service import read_catalog_file
    from tagport.computes import check_tag, order
    from tagport.conditions import ConditionContext
    from tagport.config import Settings
    from tagport.engines.duckdb.engine import DuckDBEngine

    settings = Settings(data_dir=data_dir)
    engine = DuckDBEngine.from_settings(settings)
    spec = read_catalog_file(data_dir.parent / "catalog.json")
    from tagport.catalog.service import entries_from_file, events_from_file

    catalog = {e.key: e for e in entries_from_file(spec)}
    context = ConditionContext(catalog=catalog, events={
        e.key: {k: a.value_type for k, a in e.attributes.items()}
        for e in events_from_file(spec)})
    checked = {t.key: t for t in order(
        c for c in (check_tag(e, context) for e in catalog.values()) if c is not None)}
    store = engine.store

    def floor(key: str) -> tuple[float, float]:
        col = '"' + key + '"'
        with store.write_lock, store.load_memory():  # as compute_tag runs
            cur = store.cursor()
            cur.execute("CHECKPOINT")  # untimed: see ours()
            t, c = time.perf_counter(), time.process_time()
            cur.execute("BEGIN")
            cur.execute(f"CREATE TEMP TABLE floor_result AS {FLOORS[key][1]}")
            cur.execute(f"UPDATE users SET {col} = r.v FROM (SELECT u.gio_id, f.v FROM users u"
                        " LEFT JOIN floor_result f USING (gio_id)) r"
                        " WHERE users.gio_id = r.gio_id")
            cur.execute("COMMIT")
            seconds = time.perf_counter() - t, time.process_time() - c
            cur.close()
        return seconds

    def ours(key: str) -> tuple[float, float]:
        # tagport writes only the users whose value changes, and the floor has just
        # written the same values: empty the column first (untimed), so that tagport
        # writes every value as the floor does, as a first computation would
        with store.write_lock:
            cur = store.cursor()
            if key in store.user_columns(cur):  # not before the tag's first computation
                cur.execute(f'UPDATE users SET "{key}" = NULL')
            # every timed run starts from a checkpointed store: the WAL that the run
            # before wrote (1M users' values, ~10 MB) would otherwise trigger DuckDB's
            # automatic checkpoint (16 MB) in whichever run crosses the threshold, the
            # floor or tagport by turns (at 5M events a floor took 10x tagport's time so)
            cur.execute("CHECKPOINT")
            cur.close()
        t, c = time.perf_counter(), time.process_time()
        engine.compute_tag(catalog[key], checked[key].definition, as_of=AS_OF)
        return time.perf_counter() - t, time.process_time() - c

    def total(runs: list[tuple[float, float]]) -> tuple[float, float]:
        return sum(r[0] for r in runs), sum(r[1] for r in runs)

    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for key in checked:  # dependency order: a HORIZONTAL tier may read other tags
        if key not in FLOORS:
            continue
        ours(key)  # the column exists and the data is warm for both
        runs: dict[str, list[tuple[float, float]]] = {"floor": [], "tagport": []}
        for _ in range(repeat):
            runs["floor"].append(floor(key))
            runs["tagport"].append(ours(key))
        results[key] = runs
        print(f"{key}: floor {med(runs['floor'], 0):.3f} s, tagport"
              f" {med(runs['tagport'], 0):.3f} s", file=sys.stderr, flush=True)
    demo = [k for k in checked if k in DEMO_SET]
    whole: dict[str, list[tuple[float, float]]] = {"floor": [], "tagport": []}
    for _ in range(repeat):
        whole["floor"].append(total([floor(k) for k in demo]))
        whole["tagport"].append(total([ours(k) for k in demo]))
    results["*demo set*"] = whole
    engine.close()
    print(json.dumps(results))


def measure_compute(data_dir: Path, repeat: int, env: dict[str, str]
                    ) -> tuple[dict[str, dict[str, list[list[float]]]], Timed]:
    done = run_with_cpu([sys.executable, __file__, "--compute-worker", str(data_dir),
                         str(repeat)], env)
    results = json.loads(done.stdout.strip().splitlines()[-1])
    cli = run_with_cpu([*tagport_command(), "--data-dir", str(data_dir), "compute",
                        *DEMO_SET, "--as-of", AS_OF.isoformat()], env)
    return results, cli


# --- the report -------------------------------------------------------------------------


def med(xs: list, i: int | None = None) -> float:
    """The median of `xs`, or of their `i`-th items."""
    return statistics.median(xs if i is None else [x[i] for x in xs])


def report(args: argparse.Namespace, events: int, users: int,
           load: dict[str, list[Timed]] | None,
           compute: tuple[dict[str, dict[str, list[list[float]]]], Timed] | None,
           snapshot: str | None) -> str:
    lines = [f"# Events in, tags out: {events:,} events of {users:,} users", "",
             f"- run: {dt.datetime.now().isoformat(timespec='seconds')},"
             f" `bench/events_bench.py {' '.join(sys.argv[1:])}`; medians of {args.repeat}"
             " interleaved runs", *machine_lines(("duckdb", "pyarrow"), snapshot), ""]
    if load:
        floor, ours = load["floor"], load["tagport"]
        f_s, t_s = med([r.seconds for r in floor]), med([r.seconds for r in ours])
        f_c, t_c = med([cpu_of(r) for r in floor]), med([cpu_of(r) for r in ours])
        ratios = [o.seconds / f.seconds for f, o in zip(floor, ours, strict=True)]
        lines += ["## Events load (whole processes)", "", table(
            ["", "wall s", "events/s", "CPU s", "peak RSS"],
            [["(a) floor: bare INSERT … SELECT * FROM read_parquet", f"{f_s:.2f}",
              fmt_rate(events / f_s), f"{f_c:.2f}", fmt_mib(med([r.peak_rss for r in floor]))],
             ["(b) tagport events load", f"{t_s:.2f}", fmt_rate(events / t_s), f"{t_c:.2f}",
              fmt_mib(med([r.peak_rss for r in ours]))]]), "",
            f"**(b)/(a): {t_s / f_s:.2f}× wall** (pair by pair {min(ratios):.2f}–"
            f"{max(ratios):.2f}×), {t_c / f_c:.2f}× CPU; target ≤ 3×.",
            f"tagport's output: `{ours[-1].stdout.strip().splitlines()[-1]}`", ""]
    if compute:
        results, cli = compute
        rows = []
        for key, runs in results.items():
            label = FLOORS[key][0] if key in FLOORS else "the demo's whole tag set (sum)"
            f, t = med(runs["floor"], 0), med(runs["tagport"], 0)
            fc, tc = med(runs["floor"], 1), med(runs["tagport"], 1)
            pairs = [b[0] / a[0] for a, b in zip(runs["floor"], runs["tagport"], strict=True)]
            rows.append([label, f"`{key}`" if key in FLOORS else f"{len(DEMO_SET)} tags",
                         f"{f:.3f}", f"{t:.3f}", f"**{t / f:.2f}×**",
                         f"{min(pairs):.2f}–{max(pairs):.2f}×", f"{fc:.2f} / {tc:.2f}",
                         f"{tc / fc:.2f}×"])
        lines += ["## Computation (in one process, on the loaded store)", "", table(
            ["tag type", "tag", "(a) floor s", "(b) tagport s", "(b)/(a) wall",
             "pair by pair", "CPU s (a) / (b)", "(b)/(a) CPU"], rows), "",
            "Target ≤ 1.3× each and for the whole set. (a): the hand-written query into a temp"
            " table and the UPDATE of the users' column, one transaction; (b):"
            " `Engine.compute_tag`.", "",
            f"`tagport compute {' '.join(DEMO_SET)} --as-of {AS_OF}` as a whole process:"
            f" {cli.seconds:.2f} s wall, {cpu_of(cli):.2f} s CPU, peak RSS"
            f" {fmt_mib(cli.peak_rss)} (start-up, the job, detectors and coverage included).",
            ""]
        lines += ["Floors:", ""] + [f"- `{k}`: `{q}`" for k, (_, q) in FLOORS.items()] + [""]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--floor-load":
        floor_load(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--compute-worker":
        compute_worker(Path(sys.argv[2]), int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--prepare":
        prepare(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "reuse")
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=5_000_000)
    p.add_argument("--users", type=int, help="default: events / 50")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--work-dir", type=Path, default=BENCH_DIR / "data")
    p.add_argument("--skip-load", action="store_true",
                   help="compute on the store a --keep run left")
    p.add_argument("--skip-compute", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the generated and loaded data")
    p.add_argument("--reuse", action="store_true", help="reuse generated data (not loaded)")
    p.add_argument("--no-snapshot", action="store_true")
    p.add_argument("--suffix", default="", help="appended to the results file's name")
    args = p.parse_args()
    events, users = args.events, args.users or max(1, args.events // 50)
    work = (args.work_dir / f"events-{events}-{users}").resolve()
    work.parent.mkdir(parents=True, exist_ok=True)
    snapshot = None if args.no_snapshot else snapshot_source(args.work_dir / "events-src")
    env = dict(os.environ, TAGPORT_TIMEZONE=ZONE)
    os.environ["TAGPORT_TIMEZONE"] = ZONE
    # generated in a child: a child's peak RSS (wait4's ru_maxrss) counts its parent's
    # memory at the fork, and generating 100M events takes ~10 GB
    subprocess.run([sys.executable, __file__, "--prepare", str(args.work_dir.resolve()),
                    str(events), str(users), "reuse" if args.reuse or args.skip_load else "new"],
                   check=True, env=env)
    folder = args.work_dir.resolve() / f"events-{events}-{users}"
    file, base = folder / "events.parquet", folder / "base"
    load = None
    loaded = work / "loaded"
    if not args.skip_load:
        load, loaded = measure_load(file, base, work, args.repeat, env)
    compute = None if args.skip_compute else measure_compute(loaded, args.repeat, env)
    text = report(args, events, users, load, compute, snapshot)
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    dest = RESULTS_DIR / f"{dt.date.today().isoformat()}-events-{events}{args.suffix}.md"
    k = 2
    while dest.exists():
        dest = dest.with_name(f"{dt.date.today().isoformat()}-events-{events}{args.suffix}-{k}.md")
        k += 1
    dest.write_text(text + "\n", "utf-8")
    log(f"written to {dest}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
