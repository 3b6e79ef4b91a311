"""Computing tags on the engine as jobs: triggers, the job handler, the detector.

A trigger queues one compute job listing its tags in dependency order (`tagport compute`,
`POST .../computes`, the daily schedule); a worker runs it like an export (claim, lease,
retries), computing each tag with one engine query that replaces its values at once. Each
tag's outcome is kept in `tag_computes`: a tag whose query fails ends in ERROR with the
message and keeps its previous values; the others are computed all the same. While a job
listing a tag is unfinished, the tag's detector says RUNNING and a new trigger of it is
409 COMPUTE_IN_PROGRESS (GrowingIO recomputes only finished or failed tags).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Protocol

from sqlalchemy.engine import Engine as DbEngine

from tagport.catalog.coverage import CoverageStore
from tagport.catalog.models import CatalogEntry, Kind
from tagport.catalog.service import CatalogService
from tagport.computes import (
    ComputeFailed,
    ComputeStopped,
    Definition,
    check_catalog,
    check_tag,
)
from tagport.conditions import ConditionContext
from tagport.engines.base import Engine
from tagport.errors import BadRequest, Conflict, NotFound, TagportError
from tagport.exports.plan import ExportStopped
from tagport.jobs.models import COMPUTE, ExportJob
from tagport.jobs.service import JobService
from tagport.tags import repository
from tagport.tags.repository import ComputeState

log = logging.getLogger("tagport.tags")

TRIGGERED = "触发计算成功"  # GrowingIO's answer to a compute trigger


class OtherColumns(Protocol):
    """Computed columns that are not tags, computed by the same jobs after the tags
    (segments: tagport.segments registers theirs as `TagComputeService.others`)."""

    def owns(self, key: str) -> bool:
        """Whether `key` is one of these columns' (`seg_…`)."""
        ...

    def ordered(self, keys: list[str] | None) -> list[str]:
        """`keys` checked (404 for an unknown one) in the order they must be computed;
        None: every one the daily schedule computes."""
        ...

    def target(self, key: str) -> tuple[CatalogEntry, Definition | None]:
        """The column and what fills it; no definition when a computation leaves it as
        it is (an uploaded segment's members), only measuring it."""
        ...


class _NoOthers:
    def owns(self, key: str) -> bool:
        return False

    def ordered(self, keys: list[str] | None) -> list[str]:
        return []

    def target(self, key: str) -> tuple[CatalogEntry, Definition | None]:
        raise NotFound(f"{key!r} is not a computed column", code="TAG_NOT_FOUND")


class TagComputeService:
    def __init__(self, db: DbEngine, catalog: CatalogService, jobs: JobService,
                 coverage: CoverageStore, zone: tzinfo) -> None:
        self.db = db
        self.catalog = catalog
        self.jobs = jobs
        self.coverage = coverage
        self.zone = zone
        self.others: OtherColumns = _NoOthers()
        jobs.runner.handlers[COMPUTE] = self.run_job

    # -- triggers --------------------------------------------------------------------

    def today(self) -> date:
        return datetime.now(self.zone).date()

    def trigger(self, keys: list[str] | None = None, as_of: date | None = None,
                token_id: int | None = None) -> ExportJob:
        """Queue the computation of `keys` (default: every computed tag) for `as_of`
        (default: today), in dependency order, tags before the other columns (segments,
        which may read tags); 409 while one of them is queued or running."""
        tag_keys = [k for k in keys or [] if not self.others.owns(k)]
        other_keys = [k for k in keys or [] if self.others.owns(k)]
        ordered = self._ordered_tags(tag_keys) if tag_keys or not keys else []
        ordered += self.others.ordered(other_keys) if other_keys else []
        wanted = set(ordered)

        def check(unfinished: list[ExportJob]) -> None:
            for job in unfinished:
                if busy := sorted(wanted & set(job.properties)):
                    raise Conflict(f"{', '.join(busy)}: a computation is queued or running "
                                   f"(job {job.id})", code="COMPUTE_IN_PROGRESS")

        job = self.jobs.submit_compute(ordered, as_of or self.today(), token_id, check)
        log.info("job %s: computing %s as of %s", job.id, ", ".join(ordered), job.as_of)
        return job

    def _ordered_tags(self, keys: list[str]) -> list[str]:
        """The tags `keys` (default: every computed tag) checked, in dependency order."""
        catalog = self.catalog.by_key()
        computed = computed_tags(catalog)
        for key in keys:
            if catalog.get(key) is None or catalog[key].kind is not Kind.TAG:
                raise NotFound(f"user tag {key!r} does not exist", code="TAG_NOT_FOUND")
            if key not in computed:
                raise BadRequest(f"user tag {key!r} holds loaded values (IMPORT); only "
                                 "computed tags are computed", code="TAG_NOT_COMPUTED")
        wanted = set(keys or computed)
        if not wanted:
            raise BadRequest("the catalog has no computed tags", code="NO_COMPUTED_TAGS")
        events = self.catalog.event_catalog()
        return [t.key for t in check_catalog(catalog.values(), events) if t.key in wanted]

    # -- the job ---------------------------------------------------------------------

    def run_job(self, job: ExportJob, engine: Engine, stop: threading.Event) -> int:
        """Compute the job's tags in order; the number of tags computed."""
        assert job.as_of is not None
        catalog = self.catalog.by_key()
        context = ConditionContext(catalog=catalog, segments=frozenset(),
                                   events=self.catalog.event_catalog())
        failures: list[str] = []
        done: list[CatalogEntry] = []
        for key in job.properties:
            if stop.is_set():
                raise ExportStopped(None)
            try:
                entry, definition = self._target(key, catalog, context)
                if definition is None:  # nothing to compute: measured as it is
                    users = engine.tag_coverage([entry]).covered[key]
                else:
                    users = engine.compute_tag(entry, definition, as_of=job.as_of,
                                               stop=stop)
            except ComputeStopped as stopped:
                raise ExportStopped(None) from stopped
            except Exception as exc:
                message = exc.message if isinstance(exc, TagportError) else str(exc)
                self.record_state(ComputeState(key, "ERROR", job.id, job.as_of, _now(), None,
                                          getattr(exc, "code", "COMPUTE_FAILED"), message))
                log.warning("job %s: computing %s failed: %s", job.id, key, message)
                failures.append(f"{key}: {message}")
                continue
            self.record_state(ComputeState(key, "FINISH", job.id, job.as_of, _now(), users))
            if users and not entry.has_data and key in catalog:  # types are fixed from now
                self.catalog.mark_has_data([key])
            done.append(entry)
        self.measure_coverage(engine, done)
        if failures:
            raise ComputeFailed("; ".join(failures))
        return len(done)

    def _target(self, key: str, catalog: dict[str, CatalogEntry],
                context: ConditionContext) -> tuple[CatalogEntry, Definition | None]:
        if self.others.owns(key):
            return self.others.target(key)
        entry = catalog.get(key)
        checked = check_tag(entry, context) if entry is not None else None
        if entry is None or checked is None:
            raise BadRequest(f"{key} is no longer a computed tag of the catalog")
        return entry, checked.definition

    def record_state(self, state: ComputeState) -> None:
        with self.db.begin() as conn:
            repository.save_state(conn, state)

    def measure_coverage(self, engine: Engine, tags: list[CatalogEntry]) -> None:
        if not tags:
            return
        measured_at = _now()
        try:
            self.coverage.save(engine.tag_coverage(tags), measured_at)
        except Exception:  # the values are in; coverage catches up at the next measure
            log.exception("measuring the coverage of computed tags failed")

    # -- the detector ----------------------------------------------------------------

    def detectors(self) -> dict[str, dict[str, Any]]:
        """key -> `{stage, detectedAt, totalUsers, usersRatio}` for every computed tag:
        RUNNING while a job lists it, else its last outcome (NONE: never computed)."""
        return self.detectors_of(computed_tags(self.catalog.by_key()))

    def detectors_of(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The detectors of the computed columns `keys` (tags or segments)."""
        with self.db.connect() as conn:
            states = repository.all_states(conn)
        running = {k for job in self.jobs.unfinished(COMPUTE) for k in job.properties}
        coverage = self.coverage.all()
        out: dict[str, dict[str, Any]] = {}
        for key in keys:
            state, stored = states.get(key), coverage.get(key)
            stage = "RUNNING" if key in running else (state.stage if state else "NONE")
            doc: dict[str, Any] = {
                "stage": stage,
                "detectedAt": _iso(state.finished_at) if state else None,
                "totalUsers": stored.covered_users if stored else 0,
                "usersRatio": stored.ratio if stored else 0.0,
            }
            if state is not None and state.stage == "ERROR":
                doc["error"] = {"code": state.error_code, "message": state.error_message}
            out[key] = doc
        return out

    def forget(self, key: str) -> None:
        """Drop a deleted column's detector and coverage."""
        with self.db.begin() as conn:
            repository.delete_state(conn, key)
        self.coverage.forget(key)


def computed_tags(catalog: dict[str, CatalogEntry]) -> list[str]:
    return [k for k, e in catalog.items() if e.kind is Kind.TAG and e.compute]


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") if value else None
