"""Loading behavioural events (spec section 5).

Events live in profiles/ beside user loads, not in a package of their own: an event load
resolves identities through the identity map and creates users for identities no user
holds, so it writes the profile store as a user load does and shares what follows one
(the catalog's "holds data" marks, the tag coverage that new users change, the rejects
file). The engine does the set-based work (`Engine.load_events`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path

from tagport.catalog.service import CatalogService
from tagport.engines.base import Engine, EventLoadReport, input_format_of
from tagport.errors import InvalidInput
from tagport.profiles.service import write_rejects

log = logging.getLogger("tagport.profiles")


class EventService:
    def __init__(self, catalog: CatalogService, engine: Callable[[], Engine],
                 zone: Callable[[], tzinfo],
                 refresh_coverage: Callable[[], None] | None = None) -> None:
        self.catalog = catalog
        self._engine = engine
        self._zone = zone
        self._refresh_coverage = refresh_coverage

    def load(self, path: Path, *, known_users_only: bool = False, skip_invalid: bool = False,
             rejects_path: Path | None = None) -> EventLoadReport:
        """Load a CSV, JSON-lines or Parquet file of events, all or nothing unless
        `skip_invalid`; rejected lines go to `rejects_path` when given."""
        path = path.expanduser().resolve()
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file")
        input_format = input_format_of(path)
        events = self.catalog.events()
        if not events:
            raise InvalidInput("the event catalog is empty: define events in catalog.json"
                               " (\"events\": [...]) and run `tagport catalog apply` first")

        def mark_keys(report: EventLoadReport) -> None:
            # before the data commits, so a key never holds data without the flag
            self.catalog.mark_has_data(report.keys_with_data)

        report = self._engine().load_events(
            path, input_format, self.catalog.by_key(), events, zone=self._zone(),
            known_users_only=known_users_only, skip_invalid=skip_invalid,
            before_commit=mark_keys)
        if report.applied and report.users_created:
            self._after_new_users()
        if rejects_path is not None and report.rejects:
            write_rejects(report, rejects_path)
        return report

    def _after_new_users(self) -> None:
        if self._refresh_coverage is None:
            return
        try:  # new users change every tag's ratio
            self._refresh_coverage()
        except Exception:  # the load has committed; coverage catches up at the next one
            log.exception("measuring tag coverage after an event load failed")
