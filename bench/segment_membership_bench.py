"""Segment membership on the DuckDB engine against hand-written DuckDB SQL (issue 12).

A 5-condition definition over the demo's users and events (three attributes, a tag and
one `did` over 30 days of events) computed the way tagport computes it (a compute job's
engine call: `Engine.compute_tag(column, Membership(condition))`, one query and one
UPDATE of the membership column in a transaction) against the same work written by hand
(the members by a GROUP BY on the events, then the same UPDATE), run alternately on the
same store, medians printed side by side.

    .venv/bin/python bench/segment_membership_bench.py --users 10000000 --events 20000000

The store is built once per size under --work (the demo's generator, loaded with
tagport's own loaders) and kept for the next run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tagport import demo  # noqa: E402
from tagport.catalog.segments import membership_column  # noqa: E402
from tagport.catalog.service import (  # noqa: E402
    entries_from_file,
    events_from_file,
    read_catalog_file,
)
from tagport.computes import Membership  # noqa: E402
from tagport.conditions import ConditionContext, parse_condition  # noqa: E402
from tagport.config import Settings  # noqa: E402
from tagport.core import Tagport  # noqa: E402

DEFINITION = {"op": "and", "exprs": [
    {"key": "usr_gender", "op": "=", "values": ["男"]},
    {"op": "not", "exprs": [{"key": "usr_city", "op": "=", "values": ["上海"]}]},
    {"key": "usr_age", "op": "between", "values": [20, 45]},
    {"key": "tag_churn_risk", "op": "in", "values": ["低", "中"]},
    {"did": {"event": "payOrderSuccess", "measure": "count", "window": {"lastDays": 30}},
     "op": ">=", "values": [1]},
]}


def hand_written(as_of: date) -> str:
    first, last = as_of - timedelta(days=30), as_of - timedelta(days=1)
    return f"""
CREATE TEMP TABLE hand_result AS
SELECT u.gio_id, TRUE AS v FROM users u
JOIN (SELECT gio_id FROM events WHERE event = 'payOrderSuccess'
      AND dt BETWEEN DATE '{first}' AND DATE '{last}' GROUP BY gio_id HAVING count(*) >= 1) p
  ON p.gio_id = u.gio_id
WHERE u.usr_gender = '男' AND NOT coalesce(u.usr_city = '上海', FALSE)
  AND u.usr_age BETWEEN 20 AND 45 AND u.tag_churn_risk IN ('低', '中');
UPDATE users SET seg_bench = r.v FROM (SELECT u.gio_id, h.v FROM users u
  LEFT JOIN hand_result h ON u.gio_id = h.gio_id) r WHERE users.gio_id = r.gio_id;
"""


def build(work: Path, users: int, events: int) -> Path:
    data = work / f"seg-{users}-{events}"
    if (data / "profiles.duckdb").exists():
        return data
    data.mkdir(parents=True, exist_ok=True)
    catalog = demo.write_catalog(work / "catalog.json")
    tp = Tagport(Settings(data_dir=data))
    try:
        spec = read_catalog_file(catalog)
        tp.catalog.apply(entries_from_file(spec), events_from_file(spec))
        print(f"generating and loading {users:,} users and {events:,} events ...", flush=True)
        tp.profiles.load(demo.write_users(work / "users.parquet", users))
        tp.events.load(demo.write_events(work / "events.parquet", users, events))
    finally:
        tp.close()
    return data


def run(data: Path, rounds: int) -> tuple[list[float], list[float], int]:
    tp = Tagport(Settings(data_dir=data))
    try:
        engine = tp.engine
        as_of = date.today()
        context = ConditionContext(catalog=tp.catalog.by_key(),
                                   events=tp.catalog.event_catalog())
        definition = Membership(parse_condition(DEFINITION, context))
        column = membership_column("seg_bench")
        engine.compute_tag(column, definition, as_of=as_of)  # the column exists; warm
        ours, hand, members = [], [], 0
        for _ in range(rounds):
            t0 = time.perf_counter()
            members = engine.compute_tag(column, definition, as_of=as_of)
            ours.append(time.perf_counter() - t0)
            hand.append(_hand(engine, as_of))
        return ours, hand, members
    finally:
        tp.close()


def _hand(engine, as_of: date) -> float:
    store = engine.store
    with store.write_lock:
        cur = store.cursor()
        try:
            t0 = time.perf_counter()
            cur.execute("BEGIN")
            cur.execute(hand_written(as_of))
            cur.execute("COMMIT")
            return time.perf_counter() - t0
        finally:
            cur.execute("DROP TABLE IF EXISTS hand_result")
            cur.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tagport-bench"))
    args = parser.parse_args()
    data = build(args.work, args.users, args.events)
    ours, hand, members = run(data, args.rounds)
    o, h = statistics.median(ours), statistics.median(hand)
    report = "\n".join([
        f"# Segment membership, {args.users:,} users, {args.events:,} events "
        f"({date.today()})",
        "",
        "A 5-condition definition (3 attributes, a tag, one `did` over 30 days); "
        f"{members:,} members; median of {args.rounds} alternating runs.",
        "",
        "| | seconds | ratio |",
        "|---|---:|---:|",
        f"| hand-written DuckDB SQL (GROUP BY + UPDATE) | {h:.2f} | 1.00 |",
        f"| tagport (compute job's engine call) | {o:.2f} | {o / h:.2f} |",
        "",
        f"command: `.venv/bin/python bench/segment_membership_bench.py --users {args.users}"
        f" --events {args.events} --rounds {args.rounds}`",
    ])
    print(report)
    out = ROOT / "bench" / "results" / f"{date.today()}-segment-membership-{args.users}.md"
    out.write_text(report + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
