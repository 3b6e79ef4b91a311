#!/usr/bin/env python3
"""Where an events load's time goes: each statement the DuckDB engine runs, timed.

    .venv/bin/python bench/profile_events_load.py EVENTS_FILE BASE_DATA_DIR [--top 15]

Copies BASE_DATA_DIR (a data dir with the catalog applied and the users loaded, as
bench/events_bench.py --keep leaves in bench/data/events-N-U/base) to a scratch dir, loads
EVENTS_FILE into it with `Engine.load_events` (the settings from the environment, e.g.
TAGPORT_DUCKDB_LOAD_MEMORY_LIMIT), and prints the slowest statements with their seconds,
then the total; the process's peak RSS (VmHWM) last.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path


class TimedCursor:
    """A DuckDB cursor whose `execute` calls are timed into `spent`."""

    def __init__(self, inner, spent: list[tuple[float, str]]) -> None:
        self._inner, self._spent = inner, spent

    def execute(self, sql, *args, **kwargs):
        t = time.perf_counter()
        result = self._inner.execute(sql, *args, **kwargs)
        if result is self._inner:
            result = self
        self._spent.append((time.perf_counter() - t, " ".join(str(sql).split())))
        return result

    def __getattr__(self, name):
        return getattr(self._inner, name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", type=Path)
    p.add_argument("base", type=Path)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()

    from tagport.config import Settings
    from tagport.core import Tagport
    from tagport.engines.base import InputFormat

    with tempfile.TemporaryDirectory(dir=args.base.parent) as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(args.base, data)
        core = Tagport(Settings(data_dir=data))
        try:
            store = core.engine.store
            spent: list[tuple[float, str]] = []
            plain = store.cursor
            store.cursor = lambda: TimedCursor(plain(), spent)  # type: ignore[method-assign]
            catalog = core.catalog.by_key()
            events = core.catalog.events()
            t = time.perf_counter()
            report = core.engine.load_events(args.file, InputFormat.PARQUET, catalog, events,
                                             zone=core.settings.zone)
            total = time.perf_counter() - t
        finally:
            core.close()
    for seconds, sql in sorted(spent, reverse=True)[: args.top]:
        print(f"{seconds:8.2f} s  {sql[:220]}")
    print(f"{total:8.2f} s  total ({sum(s for s, _ in spent):.2f} s in {len(spent)} statements);"
          f" appended {report.appended:,}")
    status = Path("/proc/self/status").read_text()
    print(next(line for line in status.splitlines() if line.startswith("VmHWM")))


if __name__ == "__main__":
    main()
