"""Loading user records into the profile store."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from tagport.catalog.service import CatalogService
from tagport.engines.base import Engine, LoadReport, input_format_of
from tagport.errors import InvalidInput


class ProfileService:
    def __init__(self, catalog: CatalogService, engine: Callable[[], Engine]) -> None:
        self.catalog = catalog
        self._engine = engine

    def load(self, path: Path, *, skip_invalid: bool = False,
             rejects_path: Path | None = None) -> LoadReport:
        """Load a CSV, JSON-lines or Parquet file of users, all or nothing unless
        `skip_invalid`; rejected records go to `rejects_path` when given."""
        path = path.expanduser().resolve()
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file")
        input_format = input_format_of(path)
        catalog = self.catalog.by_key()

        def mark_keys(report: LoadReport) -> None:
            # before the data commits, so a key never holds data without the flag
            self.catalog.mark_has_data(report.keys_with_data)

        report = self._engine().load(
            path, input_format, catalog, skip_invalid=skip_invalid, before_commit=mark_keys
        )
        if rejects_path is not None and report.rejects:
            write_rejects(report, rejects_path)
        return report


def write_rejects(report: LoadReport, path: Path) -> None:
    """The rejected records as CSV: line, field, reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["line", "field", "reason"])
        for reject in report.rejects:
            writer.writerow([reject.line, reject.field or "", reject.reason])
