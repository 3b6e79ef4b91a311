"""How far `tagport load` is from the engine's own floor for the same file, side by side.

The floor is what any DuckDB loader of these users has to do at the least, written by
hand with tagport's threads and its load memory limit, in a fresh database each:

1. copy: `CREATE TABLE users AS SELECT file_row_number + 1 AS gio_id, * ...` from
   `read_parquet` (the file as it is: no checks, no identity resolution, no sort);
2. copy + identity map: the same, plus the table of (identity key, value, gio_id) built
   from both identities, the device id unnested.

Then `tagport load` of the same file into a fresh data dir (a subprocess, as a user runs
it: validation, identity resolution, the users kept in gio_id order). Prints a Markdown
table with users/s and the ratios, and writes it to bench/results/.

    .venv/bin/python bench/load_floor.py [--file bench/data/users.parquet] [--repeat 1]

The file is the one `bench/export_bench.py --keep` leaves (its catalog beside it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
USER_ID, DEVICE_ID = "id_$basic_userId", "id_$basic_deviceId"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def floor(file: Path, threads: int, memory_limit: str, with_map: bool) -> float:
    with tempfile.TemporaryDirectory(dir=BENCH_DIR / "data") as tmp:
        con = duckdb.connect(str(Path(tmp) / "floor.duckdb"))
        con.execute(f"SET threads = {threads}")
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{tmp}/spill'")
        t = time.perf_counter()
        con.execute("BEGIN")
        con.execute("CREATE TABLE users AS SELECT file_row_number + 1 AS gio_id,"
                    f" * EXCLUDE (file_row_number) FROM read_parquet('{file}',"
                    " file_row_number = true)")
        if with_map:
            con.execute(
                "CREATE TABLE identity_map AS"
                f" SELECT '{USER_ID}' AS id_key, {_q(USER_ID)} AS id_value, gio_id FROM users"
                f" WHERE {_q(USER_ID)} IS NOT NULL UNION ALL"
                f" SELECT '{DEVICE_ID}', unnest({_q(DEVICE_ID)}), gio_id FROM users")
        con.execute("COMMIT")
        seconds = time.perf_counter() - t
        con.close()
    return seconds


def tagport_load(file: Path, catalog: Path) -> tuple[float, str]:
    with tempfile.TemporaryDirectory(dir=BENCH_DIR / "data") as tmp:
        data = Path(tmp) / "data"
        base = [sys.executable, "-m", "tagport", "--data-dir", str(data)]
        subprocess.run([*base, "catalog", "apply", str(catalog)], check=True,
                       capture_output=True)
        t = time.perf_counter()
        done = subprocess.run([*base, "load", str(file)], check=True, capture_output=True,
                              text=True)
        seconds = time.perf_counter() - t
    return seconds, done.stdout.strip().splitlines()[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--file", type=Path, default=BENCH_DIR / "data" / "users.parquet")
    p.add_argument("--repeat", type=int, default=1, help="runs of each; the best is kept")
    args = p.parse_args()
    file = args.file.resolve()
    catalog = file.parent / "catalog.json"
    if not file.is_file() or not catalog.is_file():
        p.error(f"{file} and {catalog} are needed: run bench/export_bench.py --keep first")
    from tagport.config import Settings

    settings = Settings()
    threads, limit = settings.duckdb_threads, settings.load_memory_limit
    users = duckdb.sql(f"SELECT count(*) FROM read_parquet('{file}')").fetchall()[0][0]
    rows = []
    for name, run in (
        ("floor: copy", lambda: floor(file, threads, limit, with_map=False)),
        ("floor: copy + identity map", lambda: floor(file, threads, limit, with_map=True)),
        ("tagport load", lambda: tagport_load(file, catalog)[0]),
    ):
        seconds = min(run() for _ in range(args.repeat))
        rows.append((name, seconds))
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    load = rows[-1][1]
    lines = [
        f"# Loading {users:,} users from Parquet: tagport against the engine's floor",
        "",
        f"- run: {dt.datetime.now().isoformat(timespec='seconds')}, `bench/load_floor.py"
        f" --file {args.file} --repeat {args.repeat}` (best of {args.repeat});"
        f" load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- {os.cpu_count()} cores; duckdb {duckdb.__version__}; DuckDB threads {threads},"
        f" memory limit {limit} (tagport's load limit) for the floor and tagport alike",
        "",
        "| what | time s | users/s | tagport / this |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {s:.1f} | {users / s:,.0f} | {load / s:.2f}× |" for name, s in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    dest = RESULTS_DIR / f"{dt.date.today().isoformat()}-load-floor-{users}.md"
    dest.write_text(text, "utf-8")
    print(f"written to {dest}", file=sys.stderr)


if __name__ == "__main__":
    main()
