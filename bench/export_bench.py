#!/usr/bin/env python3
"""Benchmark tagport's export against the engine's own floor and a naive pandas baseline.

    .venv/bin/python bench/export_bench.py [--users 10000000] [--seed 42] [--repeat 3]
        [--cases csv-key,csv-name,json,parquet,csv+gzip,csv+zstd,json+gzip,json+zstd]
        [--work-dir bench/data] [--skip-baseline] [--baseline-max-rss 12]
        [--keep] [--reuse] [--verify] [--no-snapshot]

What it does, in order (issue 3, item 1):

1. Generates, with DuckDB SQL and a seed, a synthetic profile table of N users with 20
   columns: 2 identities (the device id multi-valued), 8 attributes of mixed types (with
   Chinese personal names), 10 tags (`tag_rfm` covers ~70%), ~1/3 of the values null,
   and a catalog with Chinese display names. It writes `catalog.json`, `users.parquet`,
   `users.csv` (same users) and `users-small.parquet` (the first N/10 users).
2. Loads them through tagport's own CLI (subprocesses, timed): the Parquet file into one
   data dir, the CSV file into a second fresh one, the N/10 file into a third.
3. For each case with all 20 properties, side by side: csv/key, csv/name and json, and
   the outputs of spec section 9: parquet, csv+gzip, csv+zstd, json+gzip, json+zstd
   (the compressed csv with the key header); `--cases` picks some of them (default all):
   (a) floor: a hand-written DuckDB `COPY (SELECT ...) TO` of the same rows and
       columns, on the same `profiles.duckdb` opened read-only, same threads and memory
       limit as tagport's settings, in a fresh subprocess (no server running). The SQL
       follows the store's layout as found (identities VARCHAR[] or `||`-joined text,
       array tags T[] or JSON), and has no ORDER BY when a plain scan is already in
       gio_id order (checked), as tagport relies on. For parquet it is
       `(FORMAT PARQUET)` of the typed select (gio_id UBIGINT, identities VARCHAR[],
       array tags as typed lists: tagport's schema as far as DuckDB's COPY writes it;
       snappy and row groups of tagport's size); for csv+X and json+X it is the csv or
       json select with `COMPRESSION X`;
   (b) tagport end to end over HTTP against a `tagport serve` subprocess: submit, poll
       until FINISH, download the file to disk (with curl, the client of the seed's
       examples; --client httpx for Python's); the server's peak RSS (VmHWM reset
       before the run, and VmRSS sampled, children included) and CPU seconds;
   (c) naive baseline, for csv/key, csv/name and json only: DuckDB `.df()` + pandas
       `to_csv` / `to_json(lines=True)`, in a subprocess of its own (its peak RSS is its
       own), stopped when its RSS passes --baseline-max-rss GiB and then reported as a
       lower bound (at 10M users the JSON baseline needs more memory than this 23 GiB
       machine has).
   csv/key (when selected) is also run on the N/10 data dir to show how time and memory
   grow with N. The MB of a compressed case are the compressed file's.
4. Prints Markdown tables and writes them to bench/results/<date>-<N>.md (with -2, -3...
   when that file exists).

--verify checks that the floor's csv/json files hold the same values as tagport's
(parsed in Python: slow at large N), that each compressed tagport file decompresses
(Python's gzip, the zstd command) to exactly the bytes of the plain tagport export of the
same format, and that the floor's parquet file holds tagport's rows (read with pyarrow,
column by column, the floor's cast to tagport's types where they differ).

The server holds the DuckDB file as its one writer, so for each case the floor runs
first (no server), then a fresh server serves the k runs of (b) and is stopped (SIGINT),
then the baseline runs.

tagport runs from a copy of src/tagport taken at the start (PYTHONPATH), so that edits
to src/ during a long run do not mix versions; --no-snapshot runs src/ as it is.
--keep keeps the generated files and loaded data dirs; --reuse skips generating and
loading and measures the exports again on them.
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
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    BENCH_DIR,
    MB,
    RESULTS_DIR,
    PeakRss,
    create_token,
    fmt_mib,
    fmt_rate,
    git_rev,
    log,
    machine_lines,
    snapshot_source,
    start_server,
    table,
    tagport,
)

EXPORT_TAG = "tag_rfm"
POLL_INTERVAL = 0.05

SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱",
            "胡", "郭", "何", "林", "罗", "高", "郑", "梁", "谢", "宋", "唐",
            "欧阳", "司马", "诸葛"]
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
         "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "子涵", "浩然", "雨轩", "欣怡", "梓萱",
         "宇航", "思远", "一诺", "语桐"]
CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安", "南京", "重庆",
          "苏州", "长沙"]
INTERESTS = ["数码", "美妆", "服饰", "食品", "家居", "母婴", "运动", "图书"]

CATALOG = {
    "identities": [
        {"key": "id_$basic_userId", "name": "登录用户ID", "name_en": "Login user ID"},
        {"key": "id_$basic_deviceId", "name": "设备ID", "name_en": "Device ID",
         "description": "弱身份：一个用户可有多个设备"},
    ],
    "attributes": [
        {"key": "usr_name", "name": "姓名", "type": "string"},
        {"key": "usr_gender", "name": "性别", "type": "string"},
        {"key": "usr_age", "name": "年龄", "type": "int"},
        {"key": "usr_city", "name": "城市", "type": "string"},
        {"key": "usr_is_vip", "name": "是否会员", "type": "bool"},
        {"key": "usr_balance", "name": "账户余额", "type": "double"},
        {"key": "usr_birthday", "name": "生日", "type": "date"},
        {"key": "usr_register_time", "name": "注册时间", "type": "datetime"},
    ],
    "tags": [
        {"key": "tag_rfm", "name": "会员等级", "type": "string",
         "description": "按最近消费、频次和金额划分的等级：高、中、低"},
        {"key": "tag_active_days", "name": "近30天活跃天数", "type": "int"},
        {"key": "tag_ltv", "name": "用户生命周期价值", "type": "double"},
        {"key": "tag_interests", "name": "兴趣偏好", "type": "string", "isArray": True},
        {"key": "tag_last_purchase", "name": "最近购买日期", "type": "date"},
        {"key": "tag_churn_risk", "name": "流失风险", "type": "string"},
        {"key": "tag_order_count", "name": "累计订单数", "type": "int"},
        {"key": "tag_preferred_channel", "name": "偏好渠道", "type": "string"},
        {"key": "tag_last_active_time", "name": "最近活跃时间", "type": "datetime"},
        {"key": "tag_member_level", "name": "会员卡等级", "type": "string"},
    ],
}
ENTRIES = [dict(e, kind=kind) for kind in ("identities", "attributes", "tags")
           for e in CATALOG[kind]]
PROPERTIES = [e["key"] for e in ENTRIES]  # the 20 exported properties
assert len(PROPERTIES) == 20

@dataclass(frozen=True)
class Case:
    """One export measured: its request body's fileFormat, csvHeaderType, compression."""

    name: str
    fmt: str  # csv, json, parquet
    header: str = "key"
    compression: str = "none"  # none, gzip, zstd

    @property
    def ext(self) -> str:
        return self.fmt + {"none": "", "gzip": ".gz", "zstd": ".zst"}[self.compression]

    @property
    def plain(self) -> str | None:
        """The case whose file this one's decompresses to (csv+X: csv/key)."""
        if self.compression == "none":
            return None
        return "csv/key" if self.fmt == "csv" else self.fmt

    @property
    def pandas(self) -> bool:
        """The naive pandas baseline is run for the plain csv and json cases only."""
        return self.compression == "none" and self.fmt in ("csv", "json")

    def body(self) -> dict:
        body = {"properties": PROPERTIES, "fileFormat": self.fmt, "csvHeaderType": self.header}
        if self.compression != "none":
            body["compression"] = self.compression
        return body


# in this order: a compressed case's plain case runs before it (--verify compares them)
CASES = [Case("csv/key", "csv", "key"), Case("csv/name", "csv", "name"), Case("json", "json"),
         Case("parquet", "parquet"),
         Case("csv+gzip", "csv", "key", "gzip"), Case("csv+zstd", "csv", "key", "zstd"),
         Case("json+gzip", "json", "key", "gzip"), Case("json+zstd", "json", "key", "zstd")]
CASE_NAMES = [c.name for c in CASES]
# the first bytes of each kind of file: a check that the request's output was written
MAGIC = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd", "parquet": b"PAR1"}
# catalog type -> DuckDB type, as tagport's store and Parquet schema type them
SQL_TYPES = {"string": "VARCHAR", "int": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN",
             "date": "DATE", "datetime": "TIMESTAMP"}


def parse_cases(text: str) -> list[Case]:
    """`csv-key,json,parquet,csv+gzip` (or `csv/key`; `all`) -> the cases, in CASES order."""
    wanted = {w.strip().lower().replace("-", "/") for w in text.split(",") if w.strip()}
    if "all" in wanted:
        return list(CASES)
    unknown = wanted - set(CASE_NAMES)
    if unknown or not wanted:
        raise ValueError(f"unknown case(s) {sorted(unknown)}; the cases are "
                         + ", ".join(n.replace("/", "-") for n in CASE_NAMES))
    return [c for c in CASES if c.name in wanted]


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


# u(i, k): a uniform number in [0, 1) for user i and draw k, from a seeded hash, so the
# data is the same whatever the thread count (random() with setseed needs one thread)
_MACROS = """
CREATE OR REPLACE TEMP MACRO u(i, k) AS (hash(i, k, {seed}) % 1000000) / 1000000.0;
CREATE OR REPLACE TEMP MACRO pick(l, x) AS l[1 + CAST(floor(x * len(l)) AS INTEGER)];
"""

_USERS_SQL = f"""
SELECT
  CASE WHEN u(i, 1) < 0.10 THEN NULL ELSE 'U' || lpad(CAST(i AS VARCHAR), 10, '0') END
    AS "id_$basic_userId",
  CASE WHEN u(i, 1) >= 0.10 AND u(i, 2) < 0.15 THEN NULL ELSE
    list_transform(range(1 + CAST(floor(u(i, 3) * 3) AS INTEGER)),
                   lambda d: 'D' || lpad(CAST(i * 3 + d AS VARCHAR), 11, '0')) END
    AS "id_$basic_deviceId",
  CASE WHEN u(i, 4) < 0.05 THEN NULL ELSE
    pick({_sql_list(SURNAMES)}, u(i, 5)) || pick({_sql_list(GIVEN)}, u(i, 6))
    || CASE WHEN u(i, 7) < 0.5 THEN pick({_sql_list(GIVEN)}, u(i, 8)) ELSE '' END END
    AS usr_name,
  CASE WHEN u(i, 9) < 0.2 THEN NULL WHEN u(i, 10) < 0.5 THEN '男' ELSE '女' END AS usr_gender,
  CASE WHEN u(i, 11) < 0.3 THEN NULL ELSE 16 + CAST(floor(u(i, 12) * 50) AS BIGINT) END
    AS usr_age,
  CASE WHEN u(i, 13) < 0.25 THEN NULL ELSE pick({_sql_list(CITIES)}, u(i, 14)) END AS usr_city,
  CASE WHEN u(i, 15) < 0.1 THEN NULL ELSE u(i, 16) < 0.3 END AS usr_is_vip,
  CASE WHEN u(i, 17) < 0.3 THEN NULL ELSE round(u(i, 18) * 5000, 2) END AS usr_balance,
  CASE WHEN u(i, 19) < 0.4 THEN NULL ELSE
    DATE '1960-01-01' + CAST(floor(u(i, 20) * 16000) AS INTEGER) END AS usr_birthday,
  CASE WHEN u(i, 21) < 0.02 THEN NULL ELSE TIMESTAMP '2018-01-01 00:00:00'
    + to_seconds(CAST(floor(u(i, 22) * 250000000) AS BIGINT)) END AS usr_register_time,
  CASE WHEN u(i, 23) < 0.3 THEN NULL ELSE pick(['高', '中', '低'], u(i, 24)) END AS tag_rfm,
  CASE WHEN u(i, 25) < 0.35 THEN NULL ELSE CAST(floor(u(i, 26) * 31) AS BIGINT) END
    AS tag_active_days,
  CASE WHEN u(i, 27) < 0.5 THEN NULL ELSE round(u(i, 28) * 20000, 2) END AS tag_ltv,
  CASE WHEN u(i, 29) < 0.4 THEN NULL ELSE
    list_transform(range(1 + CAST(floor(u(i, 30) * 3) AS INTEGER)),
                   lambda k: {_sql_list(INTERESTS)}[1 + CAST(
                     (floor(u(i, 31) * {len(INTERESTS)}) + k * 3) % {len(INTERESTS)} AS INTEGER)])
    END AS tag_interests,
  CASE WHEN u(i, 34) < 0.45 THEN NULL ELSE
    DATE '2025-06-01' + CAST(floor(u(i, 35) * 365) AS INTEGER) END AS tag_last_purchase,
  CASE WHEN u(i, 36) < 0.6 THEN NULL ELSE pick(['高', '中', '低'], u(i, 37)) END
    AS tag_churn_risk,
  CASE WHEN u(i, 38) < 0.45 THEN NULL ELSE
    CAST(floor(u(i, 39) * u(i, 40) * 200) AS BIGINT) END AS tag_order_count,
  CASE WHEN u(i, 41) < 0.5 THEN NULL ELSE
    pick(['微信小程序', 'App', '官网', '线下门店', '抖音'], u(i, 42)) END AS tag_preferred_channel,
  CASE WHEN u(i, 43) < 0.25 THEN NULL ELSE TIMESTAMP '2026-01-01 00:00:00'
    + to_seconds(CAST(floor(u(i, 44) * 25000000) AS BIGINT)) END AS tag_last_active_time,
  CASE WHEN u(i, 45) < 0.55 THEN NULL ELSE
    pick(['普通会员', '银卡会员', '金卡会员', '钻石会员'], u(i, 46)) END AS tag_member_level
FROM range(1, {{users}} + 1) t(i)
"""


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def generate(work: Path, users: int, seed: int) -> dict[str, Path]:
    """catalog.json, users.parquet, users.csv and users-small.parquet (N/10) in `work`."""
    import duckdb

    files = {"catalog": work / "catalog.json", "parquet": work / "users.parquet",
             "csv": work / "users.csv", "small": work / "users-small.parquet"}
    files["catalog"].write_text(json.dumps(CATALOG, ensure_ascii=False, indent=2), "utf-8")
    con = duckdb.connect(config={"threads": os.cpu_count() or 2})
    try:
        for stmt in _MACROS.format(seed=int(seed)).strip().split(";"):
            if stmt.strip():
                con.execute(stmt)
        for name, n in (("parquet", users), ("small", users // 10)):
            con.execute(f"COPY ({_USERS_SQL.format(users=int(n))}) TO {_lit(str(files[name]))}"
                        " (FORMAT PARQUET, COMPRESSION zstd)")
        # the CSV of the same users: multi-valued fields joined by `||`, null an empty field
        con.execute(
            f"COPY (SELECT * REPLACE (array_to_string(\"id_$basic_deviceId\", '||')"
            f" AS \"id_$basic_deviceId\", array_to_string(tag_interests, '||') AS tag_interests)"
            f" FROM read_parquet({_lit(str(files['parquet']))}))"
            f" TO {_lit(str(files['csv']))} (FORMAT CSV, HEADER)"
        )
    finally:
        con.close()
    return files


# --- the floor and the baseline (hand-written, run in child processes) -------------------


@dataclass
class Store:
    """What the hand-written SQL needs to know of tagport's `users` table: the column
    types (the store's layout is tagport's choice: identities may be VARCHAR[] or
    `||`-joined VARCHAR, array tags T[] or JSON text) and whether a plain scan already
    returns the rows in gio_id order (then the floor, like tagport, needs no sort)."""

    types: dict[str, str]
    ordered: bool

    @property
    def order_by(self) -> str:
        return "" if self.ordered else " ORDER BY gio_id"


def inspect_store(data_dir: Path) -> Store:
    """Read the store's layout (read-only; no server may hold the file)."""
    import duckdb

    con = duckdb.connect(str(data_dir / "profiles.duckdb"), read_only=True)
    try:
        types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'users'").fetchall())
        back = con.execute(
            "SELECT count(*) FROM (SELECT gio_id < lag(gio_id) OVER (ORDER BY rowid) AS back"
            " FROM users)"
            " WHERE back").fetchall()[0][0]
    finally:
        con.close()
    missing = [k for k in PROPERTIES if k not in types]
    if missing:
        raise RuntimeError(f"the users table lacks columns {missing}: {types}")
    return Store(types, back == 0)


def _joined(col: str, dtype: str) -> str:
    """A multi-valued column as one `||`-joined string."""
    if dtype.endswith("[]"):
        return f"array_to_string({col}, '||')"
    if dtype == "JSON":
        return f"array_to_string(CAST({col} AS VARCHAR[]), '||')"
    return col  # already joined text


def _where(store: Store) -> str:
    return f" FROM users WHERE {_ident(EXPORT_TAG)} IS NOT NULL{store.order_by}"


def csv_select(store: Store, header: str) -> str:
    """The export's rows and columns; identities and arrays joined by `||` as the spec says."""
    cols = ["gio_id"]
    for e in ENTRIES:
        col = _ident(e["key"])
        multi = e["kind"] == "identities" or e.get("isArray")
        expr = _joined(col, store.types[e["key"]]) if multi else col
        cols.append(f"{expr} AS {_ident(e['name'] if header == 'name' else e['key'])}")
    return f"SELECT {', '.join(cols)}{_where(store)}"


def json_select(store: Store) -> str:
    """The same nested objects as the spec's JSON lines: DuckDB's own struct_pack.
    Identities are `||`-joined strings; array tags stay arrays (a JSON column is written
    as JSON)."""
    def struct(entries: list[dict]) -> str:
        fields = []
        for e in entries:
            col = _ident(e["key"])
            value = _joined(col, store.types[e["key"]]) if e["kind"] == "identities" else col
            fields.append(f"{col} := {value}")
        return f"struct_pack({', '.join(fields)})"
    ids = [e for e in ENTRIES if e["kind"] == "identities"]
    props = [e for e in ENTRIES if e["kind"] != "identities"]
    return (f"SELECT gio_id, {struct(ids)} AS identifications, {struct(props)} AS properties"
            f"{_where(store)}")


def flat_select(store: Store) -> str:
    """What a pandas user selects for JSON lines: the columns flat."""
    cols = ["gio_id"] + [
        f"{_joined(_ident(e['key']), store.types[e['key']])} AS {_ident(e['key'])}"
        if e["kind"] == "identities" else _ident(e["key"]) for e in ENTRIES
    ]
    return f"SELECT {', '.join(cols)}{_where(store)}"


def _as_list(col: str, dtype: str, elem: str) -> str:
    """A multi-valued column as a typed list `elem[]`, from the store's layout."""
    if dtype == f"{elem}[]":
        return col
    if dtype.endswith("[]") or dtype == "JSON":
        return f"CAST({col} AS {elem}[])"
    return f"string_split({col}, '||')"  # `||`-joined text


def parquet_select(store: Store) -> str:
    """tagport's Parquet schema as far as DuckDB's COPY writes it: gio_id UBIGINT (uint64),
    identities VARCHAR[] (list<string>), array tags as lists of their catalog type, the
    other columns in their catalog type, all under their keys."""
    cols = ["CAST(gio_id AS UBIGINT) AS gio_id"]
    for e in ENTRIES:
        col, dtype = _ident(e["key"]), store.types[e["key"]]
        if e["kind"] == "identities":
            expr = _as_list(col, dtype, "VARCHAR")
        elif e.get("isArray"):
            expr = _as_list(col, dtype, SQL_TYPES[e["type"]])
        else:
            expr = col
        cols.append(f"{expr} AS {col}")
    return f"SELECT {', '.join(cols)}{_where(store)}"


def parquet_rows_per_group() -> int:
    """tagport's row group size, so that the floor's file is laid out alike."""
    from tagport.exports.parquet import ROWS_PER_GROUP

    return int(ROWS_PER_GROUP)


def floor_copy(store: Store, case: Case, out: Path) -> str:
    compression = "" if case.compression == "none" else f", COMPRESSION {case.compression}"
    if case.fmt == "csv":
        return (f"COPY ({csv_select(store, case.header)}) TO {_lit(str(out))}"
                f" (FORMAT CSV, HEADER{compression})")
    if case.fmt == "json":
        return f"COPY ({json_select(store)}) TO {_lit(str(out))} (FORMAT JSON{compression})"
    # pyarrow's ParquetWriter, tagport's, compresses with snappy by default: so does this
    return (f"COPY ({parquet_select(store)}) TO {_lit(str(out))} (FORMAT PARQUET,"
            f" COMPRESSION snappy, ROW_GROUP_SIZE {parquet_rows_per_group()})")


def _self_hwm() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(mode: str, spec: dict) -> None:
    """Child process: connect read-only, time the work (not the connect), print JSON."""
    import duckdb

    config = {"threads": spec["threads"], "memory_limit": spec["memory_limit"],
              "temp_directory": spec["temp_directory"]}
    con = duckdb.connect(spec["db"], read_only=True, config=config)
    cpu0 = os.times()
    t0 = time.perf_counter()
    if mode == "_floor":
        rows = int(con.execute(spec["sql"]).fetchall()[0][0])
    else:  # _pandas: what a user would write by hand
        df = con.sql(spec["sql"]).df()
        rows = len(df)
        if spec["format"] == "csv":
            df.to_csv(spec["out"], index=False)
        else:
            df.to_json(spec["out"], orient="records", lines=True, force_ascii=False,
                       date_format="iso")
    seconds = time.perf_counter() - t0
    cpu1 = os.times()
    con.close()
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss": _self_hwm(),
                      "cpu": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)}))


def run_child(mode: str, spec: dict, max_rss: int | None = None) -> dict:
    """Run a child; with `max_rss`, stop it when its RSS passes that (the machine is shared:
    the naive baseline can take all of its memory) and report how far it got."""
    import tempfile

    from _common import rss

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, mode, json.dumps(spec)],
                                stdout=out, stderr=err)
        stopped = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if max_rss is not None and rss(proc.pid) > max_rss:
                proc.kill()
                stopped = True
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode == 0 and not stopped:
        return json.loads(stdout.strip().splitlines()[-1])
    if max_rss is None:
        raise RuntimeError(f"{mode} failed ({proc.returncode}):\n{stdout}\n{stderr}")
    oom = ", killed: out of memory?" if proc.returncode == -9 else ""
    why = (f"stopped at the {max_rss / 2**30:g} GiB RSS cap" if stopped
           else f"failed (exit {proc.returncode}{oom})")
    return {"failed": why, "seconds": elapsed, "rows": None, "peak_rss": usage.ru_maxrss * 1024,
            "cpu": usage.ru_utime + usage.ru_stime, "stderr": stderr[-2000:]}


# --- measurements -----------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    rows: int | None
    bytes: int
    peak_rss: int
    cpu: float = 0.0
    detail: dict = field(default_factory=dict)
    failed: str = ""  # the baseline was stopped or died: seconds and RSS are lower bounds


@dataclass
class Result:
    """k runs of one method on one case: the median time, the highest peak RSS."""

    runs: list[Run]

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rows(self) -> int:
        return self.runs[0].rows or 0

    @property
    def failed(self) -> str:
        return self.runs[0].failed

    @property
    def bytes(self) -> int:
        return self.runs[0].bytes

    @property
    def peak_rss(self) -> int:
        return max(r.peak_rss for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    def detail(self, key: str) -> float:
        return statistics.median(r.detail[key] for r in self.runs)


FLOOR_MEMORY_LIMIT = "2GB"


@dataclass
class Settings:
    threads: int
    memory_limit: str
    workers: int


def tagport_settings() -> Settings:
    """tagport's own defaults (or TAGPORT_* from the environment, as the server reads them).

    The floor and the baseline run with FLOOR_MEMORY_LIMIT: DuckDB's own `COPY ... (FORMAT
    JSON)` cannot run within tagport's 128MB export limit (it keeps whole ordered batches
    in memory), so they get more memory, not less; 2GB, the limit they had in earlier
    reports (with 12GB the JSON floor was slower, which would flatter tagport).
    """
    from tagport.config import Settings as TagportSettings

    s = TagportSettings()
    return Settings(s.duckdb_threads, s.duckdb_memory_limit, s.workers)


def check_file(path: Path, case: Case) -> dict:
    """The file is of the kind the case asks for (gzip, zstd or Parquet by its first bytes;
    otherwise not one of those); for Parquet, its schema and row groups, for the report."""
    with open(path, "rb") as f:
        head = f.read(4)
    kind = case.compression if case.compression != "none" else case.fmt
    if kind in MAGIC and not head.startswith(MAGIC[kind]):
        raise RuntimeError(f"{path.name} is not a {kind} file: it starts with {head!r}")
    if kind not in MAGIC and any(head.startswith(m) for m in MAGIC.values()):
        raise RuntimeError(f"{path.name} should be plain {case.fmt}: it starts with {head!r}")
    if case.fmt != "parquet":
        return {}
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    schema = pq.read_schema(path)
    return {"schema": [(f.name, str(f.type), f.nullable) for f in schema],
            "row_groups": meta.num_row_groups,
            "codec": meta.row_group(0).column(0).compression if meta.num_row_groups else "-"}


def measure_floor(data_dir: Path, store: Store, case: Case, out: Path,
                  st: Settings, keep: bool = False) -> Run:
    spec = {"db": str(data_dir / "profiles.duckdb"), "threads": st.threads,
            "memory_limit": FLOOR_MEMORY_LIMIT,
            "temp_directory": str(out.parent / "spill-floor"),
            "sql": floor_copy(store, case, out)}
    r = run_child("_floor", spec)
    size = out.stat().st_size
    detail = check_file(out, case)
    if not keep:
        out.unlink()
    return Run(r["seconds"], r["rows"], size, r["peak_rss"], r["cpu"], detail)


def measure_pandas(data_dir: Path, store: Store, fmt: str, header: str, out: Path,
                   st: Settings, max_rss: int) -> Run:  # the plain csv and json cases
    spec = {"db": str(data_dir / "profiles.duckdb"), "threads": st.threads,
            "memory_limit": FLOOR_MEMORY_LIMIT,
            "temp_directory": str(out.parent / "spill-floor"),
            "sql": csv_select(store, header) if fmt == "csv" else flat_select(store),
            "format": fmt, "out": str(out)}
    r = run_child("_pandas", spec, max_rss=max_rss)
    size = out.stat().st_size if out.exists() else 0
    out.unlink(missing_ok=True)
    if r.get("failed"):
        log(f"  the pandas baseline {r['failed']} after {r['seconds']:.0f}s;"
            f" stderr tail: {r['stderr'][-300:]!r}")
    return Run(r["seconds"], r["rows"], size, r["peak_rss"], r["cpu"], failed=r.get("failed", ""))


def _parse_ts(value: str | None) -> float | None:
    return dt.datetime.fromisoformat(value).timestamp() if value else None


def download(server, uri: str, out: Path, client: str) -> int:  # type: ignore[no-untyped-def]
    """Download `uri` to `out` with curl (the seed's own client) or httpx; the size."""
    url = f"{server.base}/download?file={uri}"
    if client == "curl":
        subprocess.run(["curl", "-sSf", "-o", str(out), "-H",
                        f"Authorization: Bearer {server.token}", url], check=True)
        return out.stat().st_size
    size = 0
    with httpx.Client(headers=server.headers, timeout=600) as http, \
            http.stream("GET", url) as resp:
        resp.raise_for_status()
        expected = int(resp.headers.get("content-length", -1))
        with open(out, "wb") as f:
            for chunk in resp.iter_raw():
                f.write(chunk)
                size += len(chunk)
    if expected >= 0 and size != expected:
        raise RuntimeError(f"downloaded {size} bytes, Content-Length said {expected}")
    return size


def measure_tagport(server, case: Case, out: Path, client: str = "curl",
                    other_client: bool = False, keep: bool = False) -> Run:  # type: ignore[no-untyped-def]
    """Submit, poll until FINISH, download to `out` with `client`; the server's peak RSS.
    With `other_client`, the file is downloaded once more with the other client (not
    counted), to tell the client's share of the download from the server's."""
    body = case.body()
    with httpx.Client(base_url=server.base, headers=server.headers, timeout=600) as http:
        with PeakRss(server.pid) as mem:
            t0 = time.perf_counter()
            r = http.post(f"/v1/api/user_tags/{EXPORT_TAG}/export_jobs", json=body)
            r.raise_for_status()
            t_submitted = time.perf_counter()
            job_id = r.json()["id"]
            polls = 0
            while True:
                doc = http.get(f"/v1/api/job/result/{job_id}").json()
                polls += 1
                if doc["stage"] == "FINISH":
                    break
                if doc["stage"] == "ERROR":
                    raise RuntimeError(f"export job {job_id} failed: {doc.get('error')}")
                time.sleep(POLL_INTERVAL)
            t_finished = time.perf_counter()
            size = download(server, doc["uris"][0], out, client)
            t_done = time.perf_counter()
    if not doc["uris"][0].endswith("_UserList." + case.ext):
        raise RuntimeError(f"{case.name}: the result is {doc['uris'][0]}, not a .{case.ext}")
    checked = check_file(out, case)
    other = "httpx" if client == "curl" else "curl"
    other_seconds = float("nan")
    if other_client and (other != "curl" or shutil.which("curl")):
        out.unlink()
        t = time.perf_counter()
        download(server, doc["uris"][0], out, other)
        other_seconds = time.perf_counter() - t
    started, finished = _parse_ts(doc.get("startedAt")), _parse_ts(doc.get("finishedAt"))
    detail = {
        "submit": t_submitted - t0,
        "export": (finished - started) if started and finished else float("nan"),
        "wait": t_finished - t0,
        "download": t_done - t_finished,
        "polls": polls,
        "other_client": other_seconds,
        **checked,
    }
    # the result files stay in the data dir's results; the bench removes its own
    shutil.rmtree(server.data_dir / "results" / doc["name"], ignore_errors=True)
    if not keep:
        out.unlink()
    return Run(t_done - t0, int(doc["rowCount"]), size, mem.peak, mem.cpu, detail)


def measure_case(data_dir: Path, store: Store, token: str, case: Case,
                 work: Path, st: Settings, repeat: int, baseline: bool,
                 verify: bool = False, baseline_max_rss: int = 12 * 2**30,
                 client: str = "curl", digests: dict[str, str] | None = None,
                 checks: list[str] | None = None) -> dict[str, Result]:
    """(a) and (b) `repeat` times each, then (c) once when `baseline`. With `verify`, the
    first run's files are kept and compared (see `verify_case`); `digests` carries the
    plain tagport files' SHA-256 from case to case, `checks` collects what was verified."""
    out_dir = work / "out"
    out_dir.mkdir(exist_ok=True)
    floor_file, tagport_file = out_dir / f"floor.{case.ext}", out_dir / f"tagport.{case.ext}"
    # the first run's files, kept for --verify out of the way of the later runs
    floor_kept = out_dir / f"floor-run1.{case.ext}"
    tagport_kept = out_dir / f"tagport-run1.{case.ext}"
    digests = {} if digests is None else digests
    results: dict[str, Result] = {}

    floors = []
    for k in range(repeat):
        floors.append(measure_floor(data_dir, store, case, floor_file, st,
                                    keep=verify and k == 0))
        if verify and k == 0:
            floor_file.rename(floor_kept)
        log(f"  {case.name} (a) floor run {k + 1}: {floors[-1].seconds:.2f}s,"
            f" {floors[-1].bytes / MB:,.0f} MB, {fmt_mib(floors[-1].peak_rss)}")
    results["a"] = Result(floors)

    server = start_server(data_dir, token, log_path=work / "server.log")
    try:
        idle = server_idle_rss(server.pid)
        runs = []
        for k in range(repeat):
            runs.append(measure_tagport(server, case, tagport_file,
                                        client=client, other_client=k == repeat - 1,
                                        keep=verify and k == 0))
            if verify and k == 0:
                tagport_file.rename(tagport_kept)
            log(f"  {case.name} (b) tagport run {k + 1}: {runs[-1].seconds:.2f}s"
                f" (export {runs[-1].detail['export']:.2f}s,"
                f" download {runs[-1].detail['download']:.2f}s), {runs[-1].bytes / MB:,.0f} MB,"
                f" server peak {fmt_mib(runs[-1].peak_rss)}")
        results["b"] = Result(runs)
        results["b"].runs[0].detail["idle_rss"] = idle
        if verify and case.plain and case.plain not in digests:
            # the plain case was not measured in this run: its file once more, not counted
            plain = next(c for c in CASES if c.name == case.plain)
            plain_file = out_dir / f"tagport-plain.{plain.ext}"
            measure_tagport(server, plain, plain_file, client=client, keep=True)
            digests[plain.name] = file_digest(plain_file)
            plain_file.unlink()
    finally:
        server.stop()

    if verify:
        note = verify_case(case, floor_kept, tagport_kept, digests)
        log(f"  {note}")
        if checks is not None:
            checks.append(note)
    if baseline:
        run = measure_pandas(data_dir, store, case.fmt, case.header,
                             out_dir / f"pandas.{case.ext}", st, baseline_max_rss)
        log(f"  {case.name} (c) pandas: {run.seconds:.2f}s, {fmt_mib(run.peak_rss)}")
        results["c"] = Result([run])

    rows = {m: r.rows for m, r in results.items() if not r.failed}
    if len(set(rows.values())) != 1:
        raise RuntimeError(f"{case.name}: the methods disagree on the row count: {rows}")
    return results


# --- --verify ---------------------------------------------------------------------------

_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def decompressed_digest(path: Path, compression: str) -> tuple[str, int]:
    """SHA-256 and size of the decompressed bytes, streamed, with decoders other than the
    writers' (Python's gzip; the zstd command, else pyarrow's)."""
    import hashlib

    h, size = hashlib.sha256(), 0
    if compression == "gzip":
        import gzip

        with gzip.open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
    elif shutil.which("zstd"):
        with subprocess.Popen(["zstd", "-dcq", str(path)], stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            while chunk := proc.stdout.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
        if proc.returncode != 0:
            raise RuntimeError(f"zstd -d {path.name} failed ({proc.returncode})")
    else:
        import pyarrow as pa

        with pa.input_stream(str(path), compression=compression) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
    return h.hexdigest(), size


def same_parquet(floor: Path, tagport_file: Path) -> str:
    """The floor's Parquet file holds tagport's rows: the same columns in the same order,
    and column by column the same values in the same row order (the floor's column cast
    to tagport's type where the types differ, which is reported)."""
    import pyarrow.parquet as pq

    fs, ts = pq.read_schema(floor), pq.read_schema(tagport_file)
    if fs.names != ts.names:
        raise RuntimeError(f"parquet: the columns differ:\n  floor:   {fs.names}"
                           f"\n  tagport: {ts.names}")
    rows = pq.ParquetFile(tagport_file).metadata.num_rows
    if pq.ParquetFile(floor).metadata.num_rows != rows:
        raise RuntimeError("parquet: the row counts differ")
    differ = []
    for f_field, t_field in zip(fs, ts, strict=True):
        a = pq.read_table(floor, columns=[t_field.name]).column(0)
        b = pq.read_table(tagport_file, columns=[t_field.name]).column(0)
        if a.type != b.type or f_field.nullable != t_field.nullable:
            differ.append(f"{t_field.name} {a.type}{'' if f_field.nullable else ' not null'}"
                          f" vs {b.type}{'' if t_field.nullable else ' not null'}")
        if a.type != b.type:
            a = a.cast(b.type)
        if not a.equals(b):
            a, b = a.combine_chunks(), b.combine_chunks()
            for i in range(0, len(a), 65536):
                sa, sb = a.slice(i, 65536).to_pylist(), b.slice(i, 65536).to_pylist()
                if sa != sb:
                    j = next(j for j, (x, y) in enumerate(zip(sa, sb, strict=True)) if x != y)
                    raise RuntimeError(f"parquet: column {t_field.name} differs at row {i + j}:"
                                       f" floor {sa[j]!r}, tagport {sb[j]!r}")
            raise RuntimeError(f"parquet: column {t_field.name} differs")
    floor.unlink()
    tagport_file.unlink()
    return (f"parquet: the floor's file holds tagport's {rows:,} rows, column by column"
            + (f" (types floor vs tagport where they differ: {'; '.join(differ)})"
               if differ else " (same types)"))


def verify_case(case: Case, floor: Path, tagport_file: Path, digests: dict[str, str]) -> str:
    """What --verify checks for `case`; a line for the report, or RuntimeError."""
    if case.fmt == "parquet":
        return same_parquet(floor, tagport_file)
    if case.compression == "none":
        digests[case.name] = file_digest(tagport_file)
        digests["floor " + case.name] = file_digest(floor)
        same_content(floor, tagport_file, case.fmt)
        return f"{case.name}: the floor's file and tagport's file hold the same values"
    assert case.plain is not None
    got, size = decompressed_digest(tagport_file, case.compression)
    if got != digests[case.plain]:
        raise RuntimeError(f"{case.name}: tagport's {tagport_file.name} decompresses to"
                           f" {size:,} bytes other than tagport's plain {case.plain} file")
    floor_got, floor_size = decompressed_digest(floor, case.compression)
    known = digests.get("floor " + case.plain)
    floor_note = ("the floor's decompresses to the plain floor's bytes" if floor_got == known
                  else "the floor's decompresses (the plain floor was not run)" if known is None
                  else "**the floor's decompresses to other bytes than the plain floor's**")
    floor.unlink()
    tagport_file.unlink()
    return (f"{case.name}: tagport's file decompresses to exactly tagport's plain {case.plain}"
            f" file ({size:,} bytes); {floor_note}")


def _same_values(a: object, b: object) -> bool:
    """Equal, or numbers written differently (DuckDB writes 1145.0 where pyarrow writes 1145)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_values(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same_values(a[k], b[k]) for k in a)
    if a == b:
        return True
    try:
        return float(a) == float(b)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def same_content(floor: Path, tagport_file: Path, fmt: str) -> None:
    """The floor must write what tagport writes, up to quoting: compare parsed values."""
    import csv
    from itertools import zip_longest

    with open(floor, encoding="utf-8", newline="") as a, \
            open(tagport_file, encoding="utf-8", newline="") as b:
        rows_a = csv.reader(a) if fmt == "csv" else (json.loads(line) for line in a)
        rows_b = csv.reader(b) if fmt == "csv" else (json.loads(line) for line in b)
        for i, (ra, rb) in enumerate(zip_longest(rows_a, rows_b)):
            if ra != rb and not _same_values(ra, rb):
                raise RuntimeError(f"{floor.name} and {tagport_file.name} differ at record {i}:"
                                   f"\n  floor:   {ra}\n  tagport: {rb}")
    floor.unlink()
    tagport_file.unlink()


def server_idle_rss(pid: int) -> int:
    from _common import rss

    return rss(pid)


@dataclass
class LoadResult:
    name: str
    users: int
    file_bytes: int
    seconds: float
    peak_rss: int
    output: str


def load_into(data_dir: Path, catalog: Path, users_file: Path, users: int, name: str) -> LoadResult:
    if data_dir.exists():
        shutil.rmtree(data_dir)
    tagport(data_dir, "catalog", "apply", str(catalog))
    t = tagport(data_dir, "load", str(users_file))
    summary = [ln for ln in t.stdout.splitlines() if ln.startswith("inserted=")]
    if f"inserted={users} " not in (summary[-1] + " " if summary else ""):
        raise RuntimeError(f"load of {users_file} did not insert {users} users:"
                           f"\n{t.stdout}\n{t.stderr}")
    log(f"loaded {users_file.name}: {t.seconds:.1f}s, {users / t.seconds:,.0f} users/s,"
        f" peak RSS {fmt_mib(t.peak_rss)}")
    return LoadResult(name, users, users_file.stat().st_size, t.seconds, t.peak_rss,
                      summary[-1])


# --- the report -------------------------------------------------------------------------


def _ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _command(args: argparse.Namespace) -> str:
    cases = ",".join(c.name.replace("/", "-") for c in args.selected)
    return (f"bench/export_bench.py --users {args.users} --seed {args.seed}"
            f" --repeat {args.repeat}"
            + ("" if len(args.selected) == len(CASES) else f" --cases {cases}")
            + (" --skip-baseline" if args.skip_baseline else "")
            + (" --reuse" if args.reuse else "") + (" --verify" if args.verify else ""))


def _mb(size: int) -> str:
    """MB with the digits that matter: the compressed files are small."""
    mb = size / MB
    return f"{mb:,.0f}" if mb >= 100 else f"{mb:.1f}" if mb >= 10 else f"{mb:.2f}"


def tagport_compressors() -> str:
    """How the tagport being measured compresses (its sinks, from the snapshot if any)."""
    import pyarrow as pa

    from tagport.exports import sinks

    gzip = getattr(sinks, "GzipStream", None)
    level = getattr(gzip, "LEVEL", None)
    gz = (f"gzip is zlib at level {level}" if level is not None else
          "gzip is pyarrow's CompressedOutputStream at its default level"
          f" {pa.Codec.default_compression_level('gzip')}")
    return (f"{gz}, zstd pyarrow's CompressedOutputStream at its default level"
            f" {pa.Codec.default_compression_level('zstd')}")


def _output_name(case: Case) -> str:
    what = {"csv": f"csv, {case.header} header", "json": "json lines", "parquet": "parquet"}
    return what[case.fmt] + ("" if case.compression == "none" else f", {case.compression}")


def _schema_text(schema: list) -> str:
    return ", ".join(f"{name} {typ}{'' if nullable else ' not null'}"
                     for name, typ, nullable in schema)


def report(args: argparse.Namespace, st: Settings, store: Store, gen_seconds: float | None,
           loads: list[LoadResult], cases: dict[str, dict[str, Result]],
           small: dict[str, Result] | None, total: float) -> str:
    n = args.users
    by_name = {c.name: c for c in CASES}
    first = next(iter(cases.values()))
    lines = [
        f"# tagport export benchmark: {n:,} users",
        "",
        f"- run: {dt.datetime.now().isoformat(timespec='seconds')}, `{_command(args)}`,"
        f" total {total / 60:.1f} min; load average at the start: "
        + " / ".join(f"{x:.2f}" for x in args.loadavg_start),
        *machine_lines(("duckdb", "pyarrow", "pandas", "numpy", "httpx", "uvicorn", "fastapi"),
                       args.snapshot),
        *([f"- note: the tagport git revision changed during the run: {args.rev_start} at the"
           f" start, {git_rev()} at the end"
           + (" (the run used its snapshot throughout)" if args.snapshot else "")]
          if git_rev() != args.rev_start else []),
        f"- tagport settings: TAGPORT_DUCKDB_THREADS={st.threads}, "
        f"TAGPORT_DUCKDB_MEMORY_LIMIT={st.memory_limit}, TAGPORT_WORKERS={st.workers}; "
        f"the floor and the baseline use the same DuckDB threads and a memory limit of"
        f" {FLOOR_MEMORY_LIMIT} (DuckDB's JSON COPY runs out of memory within"
        f" {st.memory_limit})",
        f"- data: 20 columns (2 identities, the device id multi-valued; 8 attributes; 10 tags),"
        f" `{EXPORT_TAG}` covers {first['a'].rows:,} users; "
        + (f"generated in {gen_seconds:.1f}s" if gen_seconds is not None
           else "reused from an earlier run (--reuse)") + "; all 20 properties exported",
        "- the floor's SQL is written for the store's layout as found after the load: "
        + ", ".join(f"{k} {store.types[k]}" for k in ("id_$basic_userId", "tag_interests"))
        + ("; the table scans in gio_id order (checked), so the floor has no ORDER BY"
           if store.ordered else "; the table does not scan in gio_id order, so the floor"
           " has ORDER BY gio_id"),
        "- the floors of the spec section 9 outputs: parquet is DuckDB's `COPY (...) TO"
        " (FORMAT PARQUET, COMPRESSION snappy, ROW_GROUP_SIZE"
        f" {parquet_rows_per_group()})` of the typed select (identities VARCHAR[], array tags"
        " typed lists; snappy is pyarrow's default, which tagport's ParquetWriter keeps);"
        " csv+X and json+X are the csv/key and json COPY with `COMPRESSION X`, DuckDB's own"
        f" compressed writer; tagport's {tagport_compressors()}. MB of a compressed case are"
        " the compressed file's",
        f"- times: median of {args.repeat} run(s) for (a) and (b), one run for (c); peak RSS:"
        " the highest of the runs; MB = 10^6 bytes; (b) is submit → FINISH → download"
        " complete, with the server's peak RSS (VmHWM reset before each run, plus sampled"
        " VmRSS; children included)",
        "- CPU s: user+system CPU seconds of the process doing the work: the floor's and the"
        " baseline's own process, the server for (b) (the bench's download client not"
        " included). On a shared machine CPU seconds move less than wall time, so the"
        " ratios are given both ways",
        "",
        "## tagport against the floor, one line per case",
        "",
    ]
    rows = []
    for name, res in cases.items():
        a, b = res["a"], res["b"]
        rows.append([name, _output_name(by_name[name]), f"{a.rows:,}",
                     f"{a.seconds:.2f}", fmt_rate(a.rows / a.seconds), _mb(a.bytes),
                     f"{b.seconds:.2f}", fmt_rate(b.rows / b.seconds), _mb(b.bytes),
                     f"**{b.seconds / a.seconds:.2f}×**", f"{b.cpu / a.cpu:.2f}×",
                     fmt_mib(a.peak_rss), fmt_mib(b.peak_rss)])
    lines.append(table(["case", "output", "rows", "floor s", "floor rows/s", "floor MB",
                        "tagport s", "tagport rows/s", "tagport MB", "tagport/floor wall",
                        "tagport/floor CPU", "floor peak RSS", "server peak RSS"], rows))
    lines += ["", "## Exports", ""]
    rows = []
    names = {"a": "(a) floor: DuckDB COPY", "b": "(b) tagport over HTTP",
             "c": "(c) pandas .df() + to_csv/to_json"}
    for case, res in cases.items():
        a, b = res["a"], res["b"]
        for m in ("a", "b", "c"):
            if m not in res:
                continue
            r = res[m]
            ratio = ""
            if m == "b":
                ratio = (f"(b)/(a) = {b.seconds / a.seconds:.2f}× wall,"
                         f" {b.cpu / a.cpu:.2f}× CPU")
            elif m == "c":
                eq = "≥" if r.failed else "="
                ratio = (f"(c)/(b) {eq} {r.seconds / b.seconds:.1f}× time,"
                         f" {eq} {r.peak_rss / b.peak_rss:.1f}× RSS")
            if r.failed:
                rows.append([case, names[m] + f" — **{r.failed}**", "–",
                             f"> {r.seconds:.0f}", "–", "–", "–", f"> {fmt_mib(r.peak_rss)}",
                             f"> {r.cpu:.0f}", ratio])
                continue
            rows.append([case, names[m], f"{r.rows:,}", f"{r.seconds:.2f}",
                         fmt_rate(r.rows / r.seconds), _mb(r.bytes),
                         f"{r.bytes / MB / r.seconds:,.0f}", fmt_mib(r.peak_rss),
                         f"{r.cpu:.1f}", ratio])
    lines.append(table(["case", "method", "rows", "time s", "rows/s", "MB", "MB/s",
                        "peak RSS", "CPU s", "ratio"], rows))
    lines += ["", "Where (b)'s time goes (medians; export = the job's startedAt → finishedAt"
              " in the server, including the fsync; download = the finished file downloaded to"
              f" disk by {args.client}, as counted in (b); other client = the last run's file"
              f" downloaded once more by {'httpx' if args.client == 'curl' else 'curl'},"
              " not counted, to tell the client's share from the server's):", ""]
    rows = []
    timed = list(cases.items()) + ([("csv/key at N/10", small)] if small else [])
    for case, res in timed:
        b = res["b"]
        rows.append([case, f"{b.detail('submit') * 1000:.0f} ms",
                     f"{b.detail('export'):.2f}", f"{b.detail('wait'):.2f}",
                     f"{b.detail('download'):.2f}", f"{b.runs[-1].detail['other_client']:.2f}",
                     f"{b.seconds:.2f}",
                     fmt_mib(b.runs[0].detail["idle_rss"]), fmt_mib(b.peak_rss)])
    other = "httpx" if args.client == "curl" else "curl"
    lines.append(table(["case", "submit", "export s", "submit→FINISH s",
                        f"download s ({args.client})", f"same download by {other} s",
                        "total s", "server RSS idle",
                        "server peak RSS"], rows))

    compressed = [(name, by_name[name].plain) for name in cases
                  if by_name[name].plain in cases]
    if compressed:
        lines += ["", "## Compression against the plain export of the same run", "",
                  "Size and time of each compressed case over its plain case's (csv+X over"
                  " csv/key, json+X over json), for tagport (b) and the floor (a); the extra"
                  " seconds are what compressing costs on top of the plain export.", ""]
        rows = []
        for name, plain in compressed:
            a, b, pa_, pb = cases[name]["a"], cases[name]["b"], cases[plain]["a"], cases[plain]["b"]
            rows.append([name, f"{_mb(pb.bytes)} → {_mb(b.bytes)}",
                         f"{b.bytes / pb.bytes:.1%}",
                         f"{_mb(pa_.bytes)} → {_mb(a.bytes)}",
                         f"{a.bytes / pa_.bytes:.1%}",
                         f"{b.seconds / pb.seconds:.2f}× ({b.seconds - pb.seconds:+.1f} s)",
                         f"{a.seconds / pa_.seconds:.2f}× ({a.seconds - pa_.seconds:+.1f} s)",
                         f"{b.cpu - pb.cpu:+.1f} / {a.cpu - pa_.cpu:+.1f}"])
        lines.append(table(["case", "tagport MB plain → compressed", "tagport size",
                            "floor MB plain → compressed", "floor size",
                            "tagport time vs plain", "floor time vs plain",
                            "extra CPU s tagport / floor"], rows))
    if "parquet" in cases:
        a, b = cases["parquet"]["a"], cases["parquet"]["b"]
        fa, fb = a.runs[0].detail, b.runs[0].detail
        lines += ["", "## Parquet files", "",
                  f"- tagport: {fb['row_groups']} row groups, {fb['codec']};"
                  f" schema: {_schema_text(fb['schema'])}",
                  f"- floor: {fa['row_groups']} row groups, {fa['codec']};"
                  f" schema: {_schema_text(fa['schema'])}"]
        same = [(x[0], x[1]) for x in fa["schema"]] == [(x[0], x[1]) for x in fb["schema"]]
        if not same:
            lines.append("- the types differ where DuckDB's COPY writes its own: "
                         + "; ".join(f"{x[0]} {x[1]} (floor) vs {y[1]} (tagport)"
                                     for x, y in zip(fa["schema"], fb["schema"], strict=True)
                                     if x[1] != y[1]))
    if args.verify:
        lines += ["", "## Verification (--verify)", "", *[f"- {c}" for c in args.checks]]

    if small is not None:
        ck, sm = cases["csv/key"], small
        t_ratio = ck["b"].seconds / sm["b"].seconds
        cpu_ratio = ck["b"].cpu / sm["b"].cpu
        scale = ck["a"].rows / sm["a"].rows
        rss_ratio = ck["b"].peak_rss / sm["b"].peak_rss
        lines += ["", "## Growth with N (csv/key)", ""]
        lines.append(table(
            ["users", "rows", "(a) floor s", "(a) CPU s", "(b) tagport s", "(b) server CPU s",
             "(b) rows/s", "server peak RSS"],
            [[f"{users:,}", f"{r['a'].rows:,}", f"{r['a'].seconds:.2f}", f"{r['a'].cpu:.1f}",
              f"{r['b'].seconds:.2f}", f"{r['b'].cpu:.1f}",
              fmt_rate(r['b'].rows / r['b'].seconds),
              fmt_mib(r["b"].peak_rss)] for users, r in ((n // 10, sm), (n, ck))]))
        lines += ["", f"(b) N vs N/10: {t_ratio:.2f}× the wall time and {cpu_ratio:.2f}× the"
                  f" server CPU for {scale:.2f}× the rows ({t_ratio / scale:.2f}× /"
                  f" {cpu_ratio / scale:.2f}× linear); server peak RSS {rss_ratio:.2f}×. Floor:"
                  f" {ck['a'].seconds / sm['a'].seconds:.2f}× wall,"
                  f" {ck['a'].cpu / sm['a'].cpu:.2f}× CPU,"
                  f" {ck['a'].peak_rss / sm['a'].peak_rss:.2f}× RSS."]

    lines += ["", "## Loading (`tagport load`, a fresh data dir each, identity resolution)", ""]
    if loads:
        lines.append(table(
            ["file", "users", "file MB", "time s", "users/s", "peak RSS (load process)"],
            [[lr.name, f"{lr.users:,}", f"{lr.file_bytes / MB:,.0f}", f"{lr.seconds:.1f}",
              fmt_rate(lr.users / lr.seconds), fmt_mib(lr.peak_rss)] for lr in loads]))
        lines += ["", "Load time is the wall time of the `tagport load` process (interpreter"
                  " start included), so it understates the rate at small N."]
    else:
        lines.append("Not measured in this run (--reuse kept the data dirs of an earlier run).")

    targets = []
    for case, limit in (("csv/key", 1.15), ("csv/name", 1.15), ("json", 1.25)):
        if case not in cases:
            continue
        a, b = cases[case]["a"], cases[case]["b"]
        ratio = b.seconds / a.seconds
        targets.append([f"{case} (b)/(a) ≤ {limit}", f"{ratio:.2f} (CPU {b.cpu / a.cpu:.2f})",
                        _ok(ratio <= limit)])
    for case, res in cases.items():
        if "c" not in res:
            continue
        c = res["c"]
        tr = c.seconds / res["b"].seconds
        mr = c.peak_rss / res["b"].peak_rss
        ge = "≥ " if c.failed else ""
        for what, value, limit in (("time", tr, 10), ("peak RSS", mr, 5)):
            met = _ok(value >= limit) if not c.failed or value >= limit else "unknown"
            targets.append([f"{case} pandas (c)/(b) {what} ≥ {limit}",
                            f"{ge}{value:.1f}" + (f" ({c.failed})" if c.failed else ""), met])
    peak = max(res["b"].peak_rss for res in cases.values())
    worst = max(cases, key=lambda k: cases[k]["b"].peak_rss)
    targets.append([f"server peak RSS at {n:,} users ≤ 1 GiB (all cases run)",
                    f"{fmt_mib(peak)} ({worst})", _ok(peak <= 2**30)])
    if small is not None:
        targets += [
            ["server peak RSS N / (N/10) ≤ 1.5 (csv/key)", f"{rss_ratio:.2f}",
             _ok(rss_ratio <= 1.5)],
            ["time N / (N/10) within 1.3× of linear (csv/key)",
             f"{t_ratio / scale:.2f} (CPU {cpu_ratio / scale:.2f})", _ok(t_ratio / scale <= 1.3)],
        ]
    pq = [lr for lr in loads if lr.name == "Parquet"]
    if pq:
        rate = pq[0].users / pq[0].seconds
        targets.append(["Parquet load ≥ 500,000 users/s", fmt_rate(rate), _ok(rate >= 500_000)])
    lines += ["", "## Targets (issue 3)", "", table(["target", "measured", "met"], targets)]
    lines += ["", "The spec section 9 outputs (parquet, csv/json + gzip/zstd) have no target"
              " of their own: their ratios to DuckDB's own writer are above."]
    if n < 10_000_000:
        lines += ["", f"Note: N = {n:,}; the targets are stated for 10,000,000 users."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=10_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--work-dir", type=Path, default=BENCH_DIR / "data")
    p.add_argument("--skip-baseline", action="store_true", help="Do not run pandas (c).")
    p.add_argument("--repeat", type=int, default=3, help="Runs of (a) and (b); the median is kept.")
    p.add_argument("--baseline-max-rss", type=float, default=12.0, metavar="GIB",
                   help="Stop the pandas baseline when its RSS passes this many GiB (the"
                   " machine is shared); it is then reported as a lower bound. Default 12.")
    p.add_argument("--keep", action="store_true",
                   help="Keep the work dir (data files and loaded data dirs) afterwards.")
    p.add_argument("--reuse", action="store_true",
                   help="Skip generating and loading: reuse the data dirs an earlier run with"
                   " the same --users left with --keep (loading is then not measured).")
    p.add_argument("--client", choices=["curl", "httpx"], default="curl",
                   help="The download client of (b): curl (the seed's examples use it) or httpx;"
                   " the last run downloads once more with the other, not counted.")
    p.add_argument("--no-snapshot", action="store_true",
                   help="Run tagport from src/ as it is, not from a copy taken at the start.")
    p.add_argument("--verify", action="store_true",
                   help="Check that the floor's files hold the same values as tagport's"
                   " (parses both in Python: slow at large N), that compressed tagport files"
                   " decompress to the plain tagport file, and the Parquet files' rows.")
    p.add_argument("--cases", default="all",
                   help="Comma-separated cases to measure, of: "
                   + ", ".join(n.replace("/", "-") for n in CASE_NAMES)
                   + " (csv/key also works); default all.")
    args = p.parse_args()
    if args.users < 10:
        p.error("--users must be at least 10")
    try:
        selected = parse_cases(args.cases)
    except ValueError as exc:
        p.error(f"--cases: {exc}")
    args.selected = selected
    t_start = time.perf_counter()
    args.loadavg_start = os.getloadavg()
    args.rev_start = git_rev()
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    args.snapshot = None if args.no_snapshot else snapshot_source(work / "src-snapshot")
    st = tagport_settings()
    n = args.users
    main_dir, small_dir, csv_dir = work / "main", work / "small", work / "csvload"
    with_small = any(c.name == "csv/key" for c in selected)
    shutil.rmtree(work / "out", ignore_errors=True)
    shutil.rmtree(csv_dir, ignore_errors=True)
    baseline_cap = int(args.baseline_max_rss * 2**30)

    loads: list[LoadResult] = []
    gen_seconds: float | None = None
    if args.reuse:
        for d in (main_dir, small_dir) if with_small else (main_dir,):
            if not (d / "profiles.duckdb").is_file():
                p.error(f"--reuse: {d} holds no loaded data (run once with --keep)")
        meta = json.loads((work / "meta.json").read_text()) if (work / "meta.json").exists() else {}
        if meta.get("users") != n or meta.get("seed") != args.seed:
            p.error(f"--reuse: the data in {work} is for {meta},"
                    f" not --users {n} --seed {args.seed}")
        log(f"reusing the loaded data dirs in {work}")
    else:
        shutil.rmtree(main_dir, ignore_errors=True)
        shutil.rmtree(small_dir, ignore_errors=True)
        (work / "meta.json").unlink(missing_ok=True)
        log(f"generating {n:,} users (seed {args.seed}) in {work}")
        t0 = time.perf_counter()
        files = generate(work, n, args.seed)
        gen_seconds = time.perf_counter() - t0
        log(f"generated in {gen_seconds:.1f}s: parquet"
            f" {files['parquet'].stat().st_size / MB:,.0f} MB,"
            f" csv {files['csv'].stat().st_size / MB:,.0f} MB")
        if with_small:  # csv/key at N/10 is measured only with csv/key
            loads.append(load_into(small_dir, files["catalog"], files["small"], n // 10,
                                   "Parquet (N/10)"))
        loads.append(load_into(csv_dir, files["catalog"], files["csv"], n, "CSV"))
        shutil.rmtree(csv_dir, ignore_errors=True)  # only timed; frees the disk
        loads.insert(0, load_into(main_dir, files["catalog"], files["parquet"], n, "Parquet"))
        (work / "meta.json").write_text(json.dumps({"users": n, "seed": args.seed}))

    # N/10 first (csv/key only, when selected), then the selected cases at N
    token_name = f"bench-{int(time.time())}"
    small: dict[str, Result] | None = None
    if with_small:
        log(f"csv/key at N/10 = {n // 10:,} users")
        small = measure_case(small_dir, inspect_store(small_dir),
                             create_token(small_dir, token_name), CASES[0], work, st,
                             args.repeat, baseline=False, client=args.client)
    token = create_token(main_dir, token_name)
    store = inspect_store(main_dir)
    log(f"users table: {'stored in gio_id order' if store.ordered else 'not in gio_id order'};"
        f" {store.types}")
    cases: dict[str, dict[str, Result]] = {}
    digests: dict[str, str] = {}
    args.checks = []
    for case in selected:
        log(f"{case.name} at N = {n:,} users")
        cases[case.name] = measure_case(
            main_dir, store, token, case, work, st, args.repeat,
            baseline=case.pandas and not args.skip_baseline, verify=args.verify,
            baseline_max_rss=baseline_cap, client=args.client, digests=digests,
            checks=args.checks)

    text = report(args, st, store, gen_seconds, loads, cases, small,
                  time.perf_counter() - t_start)
    print(text)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    dest = RESULTS_DIR / f"{dt.date.today().isoformat()}-{n}.md"
    k = 2
    while dest.exists():  # an earlier run of the day is kept
        dest = RESULTS_DIR / f"{dt.date.today().isoformat()}-{n}-{k}.md"
        k += 1
    dest.write_text(text, "utf-8")
    log(f"written to {dest}")
    if not args.keep:
        for name in ("main", "small", "out", "users.csv", "users.parquet", "users-small.parquet",
                     "src-snapshot", "meta.json"):
            target = work / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] in ("_floor", "_pandas"):
        _child(sys.argv[1], json.loads(sys.argv[2]))
    else:
        main()
