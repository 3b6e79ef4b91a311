"""Loading user records into the profile store."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tagport.catalog.coverage import CoverageStore
from tagport.catalog.models import Kind
from tagport.catalog.service import CatalogService
from tagport.engines.base import Engine, EventLoadReport, LoadReport, input_format_of
from tagport.errors import InvalidInput

log = logging.getLogger("tagport.profiles")


class ProfileService:
    def __init__(
        self, catalog: CatalogService, engine: Callable[[], Engine],
        coverage: CoverageStore | None = None,
        on_load: Callable[[LoadReport], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self._engine = engine
        self.coverage = coverage
        self._on_load = on_load

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
        self._after_load(report)
        if rejects_path is not None and report.rejects:
            write_rejects(report, rejects_path)
        return report

    def _after_load(self, report: LoadReport) -> None:
        if self._on_load is not None:
            self._on_load(report)
        if not report.applied:
            return
        try:
            self.refresh_coverage()
        except Exception:  # the load has committed; coverage catches up at the next one
            log.exception("measuring tag coverage after a load failed")

    def refresh_coverage(self) -> None:
        """Measure every tag's coverage on the engine and keep it in the metadata store."""
        if self.coverage is None:
            return
        tags = [e for e in self.catalog.list() if e.kind is Kind.TAG]
        measured_at = datetime.now(UTC)  # before the query: a later measurement wins
        self.coverage.save(self._engine().tag_coverage(tags), measured_at)


def write_rejects(report: LoadReport | EventLoadReport, path: Path) -> None:
    """The rejected records (or events) as CSV: line, field, reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["line", "field", "reason"])
        for reject in report.rejects:
            writer.writerow([reject.line, reject.field or "", reject.reason])
