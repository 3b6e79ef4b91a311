"""The one core that the CLI and the HTTP app share: settings, stores and services."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import cast

from sqlalchemy.engine import Engine as DbEngine

from tagport.auth.tokens import TokenService
from tagport.catalog.coverage import CoverageStore
from tagport.catalog.service import CatalogService
from tagport.computes import check_catalog
from tagport.config import Settings
from tagport.db import create_db_engine, migrate
from tagport.engines import capabilities as engine_capabilities
from tagport.engines import open_engine
from tagport.engines.base import Engine
from tagport.engines.on_demand import EngineOnDemand, EnginePerCall
from tagport.jobs.service import JobService
from tagport.ops.metrics import Metrics
from tagport.profiles.events import EventService
from tagport.profiles.lookup import LookupService
from tagport.profiles.service import ProfileService
from tagport.projects.service import ProjectService
from tagport.results import open_result_store
from tagport.segments.service import SegmentService
from tagport.tags.service import TagComputeService


class Tagport:
    """Services wired on one data dir. The data engine opens on first use, because the
    DuckDB file has one writer process and catalog or token commands do not need it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
        settings.results_path.mkdir(parents=True, exist_ok=True)
        self.results = open_result_store(settings)  # fails at once on an unusable URL
        self.results.work_root.mkdir(parents=True, exist_ok=True)
        self.db: DbEngine = create_db_engine(settings.metadata_url)
        migrate(self.db)
        self.catalog = CatalogService(self.db, check_computes=check_catalog)
        self.projects = ProjectService(self.db)
        self.tokens = TokenService(self.db, settings.token_cache_seconds)
        self.coverage = CoverageStore(self.db)
        self.metrics = Metrics(self.db)
        self.jobs = JobService(
            self.db, self.catalog, self.results,
            max_queued_per_token=settings.max_queued_jobs_per_token,
            result_ttl=settings.result_ttl,
            lease_seconds=settings.job_lease_seconds, max_attempts=settings.max_attempts,
            capabilities=engine_capabilities(settings.engine),
        )
        self.tag_computes = TagComputeService(self.db, self.catalog, self.jobs,
                                              self.coverage, settings.zone)
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self.segments = SegmentService(
            self.db, self.catalog, self.projects, self.tag_computes, lambda: self.engine,
            token_names=lambda: {t.id: t.name for t in self.tokens.list()})

    @property
    def metadata_is_local(self) -> bool:
        """The metadata store is a local SQLite file: a read never crosses a network."""
        return self.db.dialect.name == "sqlite"

    @property
    def engine(self) -> Engine:
        """The data engine, opened on first use (raises StoreBusy if another process has it)."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = open_engine(self.settings)
            return self._engine

    def open_engine_per_use(self) -> None:
        """From now on open the engine read-only for each use and close it after (an
        API-only node): it never holds the profile store between requests, so workers
        and loads can open it."""
        with self._engine_lock:
            per_call = EnginePerCall(
                EngineOnDemand(lambda: open_engine(self.settings, read_only=True)))
            self._engine = cast(Engine, per_call)  # every Engine method, by delegation

    @cached_property
    def profiles(self) -> ProfileService:
        return ProfileService(self.catalog, lambda: self.engine, coverage=self.coverage,
                              on_load=self.metrics.record_load)

    @cached_property
    def events(self) -> EventService:
        return EventService(self.catalog, lambda: self.engine, lambda: self.settings.zone,
                            refresh_coverage=self.profiles.refresh_coverage)

    @cached_property
    def lookup(self) -> LookupService:
        return LookupService(self.catalog, self.coverage, lambda: self.engine,
                             detectors=self.tag_computes.detectors)

    def close(self) -> None:
        self.jobs.close()
        with self._engine_lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None
        self.db.dispose()
