"""Segments (spec section 8): define, list, compute, upload members, estimate, portray.

A segment belongs to one project; its members live in the profile store's column named
by its key (TRUE for members), so it is exported, paged and read by conditions as a tag
is. A `DIRECT` segment's members are computed by the same compute jobs as tags (this
service is the compute service's `others`): created, changed, triggered, or daily. A
`FROM_FILES` segment's members are exactly the users holding the uploaded values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine as DbEngine

from tagport.catalog import segment_repository as repository
from tagport.catalog.models import CatalogEntry, MembersReport, Portrait
from tagport.catalog.segments import (
    CreatedBy,
    Segment,
    is_segment_key,
    membership_column,
    segments_named,
)
from tagport.catalog.service import CatalogService
from tagport.computes import Definition, Membership
from tagport.conditions import ConditionContext, parse_condition
from tagport.engines.base import Engine
from tagport.errors import BadRequest, Conflict, NotFound
from tagport.exports.selection import SegmentSelection
from tagport.i18n import Language
from tagport.profiles.lookup import (
    MAX_BINS,
    MAX_TOP,
    Page,
    check_page,
    display_name,
    json_value,
)
from tagport.projects.service import ProjectService
from tagport.segments.definitions import SegmentDoc, check_document
from tagport.tags.repository import ComputeState
from tagport.tags.service import TagComputeService

log = logging.getLogger("tagport.segments")

ESTIMATE_SAMPLE_USERS = 200_000  # above this many users an estimate counts a sample
MAX_PORTRAIT_KEYS = 20


class SegmentService:
    def __init__(self, db: DbEngine, catalog: CatalogService, projects: ProjectService,
                 computes: TagComputeService, engine: Callable[[], Engine],
                 token_names: Callable[[], Mapping[int, str]]) -> None:
        self.db = db
        self.catalog = catalog
        self.projects = projects
        self.computes = computes
        self._engine = engine
        self.token_names = token_names
        computes.others = self

    # -- reading ---------------------------------------------------------------------

    def get(self, project_id: str, key: str) -> Segment:
        """The project's segment, or 404 (`PROJECT_NOT_FOUND`, `SEGMENT_NOT_FOUND`)."""
        self.projects.get(project_id)
        with self.db.connect() as conn:
            segment = repository.by_key(conn, key)
        if segment is None or segment.project_id != project_id:
            raise NotFound(f"segment {key!r} does not exist in project {project_id!r}",
                           code="SEGMENT_NOT_FOUND")
        return segment

    def list(self, project_id: str) -> list[Segment]:
        self.projects.get(project_id)
        with self.db.connect() as conn:
            return repository.of_project(conn, project_id)

    def page(self, project_id: str, limit: int, offset: int, language: Language) -> Page:
        """GrowingIO's segment list: the project's segments, oldest first."""
        check_page(limit, offset, language)
        self.projects.get(project_id)
        with self.db.connect() as conn:
            total = repository.count_of_project(conn, project_id)
            segments = repository.of_project(conn, project_id, limit, offset)
        return Page(limit, offset, total, self.documents(segments), offset + limit < total)

    def documents(self, segments: Sequence[Segment]) -> list[dict[str, Any]]:
        detectors = self.computes.detectors_of([s.key for s in segments])
        names = self.token_names() if segments else {}
        return [segment_document(s, detectors[s.key], names) for s in segments]

    def document(self, segment: Segment) -> dict[str, Any]:
        return self.documents([segment])[0]

    # -- defining --------------------------------------------------------------------

    def create(self, project_id: str, doc: Any, token_id: int | None, *,
               compute: bool = True) -> Segment:
        """A new segment of the project (409 `SEGMENT_EXISTS` for a key taken in any
        project); a DIRECT one is computed at once unless `compute` is False (the caller
        queues the computation itself)."""
        checked = check_document(doc, self.context(project_id))
        now = datetime.now(UTC)
        segment = Segment(checked.key, project_id, checked.name, checked.description,
                          checked.scheduler, checked.created_by, checked.definition,
                          token_id, now, token_id, now)
        with self.db.begin() as conn:
            if repository.by_key(conn, segment.key) is not None:
                raise Conflict(f"a segment {segment.key!r} already exists (segment keys are "
                               "unique across projects)", code="SEGMENT_EXISTS")
            repository.insert(conn, segment)
        if compute:
            self._computed(segment, token_id)
        return segment

    def replace(self, project_id: str, key: str, doc: Any, token_id: int | None, *,
                compute: bool = True) -> Segment:
        """The segment as `doc` says; a changed definition is computed again (409
        `COMPUTE_IN_PROGRESS` while a computation of it is queued or running)."""
        old = self.get(project_id, key)
        checked = check_document(doc, self.context(project_id, without=key), key=key)
        self._refuse_cycle(project_id, checked)
        changed = (checked.definition, checked.created_by) != (old.definition, old.created_by)
        if changed and self.computes.detectors_of([key])[key]["stage"] == "RUNNING":
            raise Conflict(f"{key}: a computation is queued or running; change the "
                           "definition once it ends", code="COMPUTE_IN_PROGRESS")
        segment = Segment(key, project_id, checked.name, checked.description,
                          checked.scheduler, checked.created_by, checked.definition,
                          old.creator_id, old.created_at, token_id, datetime.now(UTC))
        with self.db.begin() as conn:
            repository.update(conn, segment)
        if changed and compute:
            self._computed(segment, token_id)
        return segment

    def delete(self, project_id: str, key: str, token_id: int | None) -> Segment:
        """Forget the segment and clear its members (409 `SEGMENT_IN_USE` while another
        segment's definition names it)."""
        segment = self.get(project_id, key)
        readers = [s.key for s in self.list(project_id) if key in s.reads()]
        if readers:
            raise Conflict(f"{key}: named by the definition of {', '.join(readers)}",
                           code="SEGMENT_IN_USE")
        with self.db.begin() as conn:
            repository.delete(conn, key)
        self.computes.forget(key)
        # computing a segment that no longer exists clears its column (see `target`)
        self.computes.jobs.submit_compute([key], self.computes.today(), token_id,
                                          lambda unfinished: None)
        return segment

    def context(self, project_id: str, without: str | None = None) -> ConditionContext:
        """What a definition in the project may name (its other segments among them)."""
        segments = frozenset(s.key for s in self.list(project_id) if s.key != without)
        return ConditionContext(catalog=self.catalog.by_key(), segments=segments,
                                events=self.catalog.event_catalog())

    def _refuse_cycle(self, project_id: str, checked: SegmentDoc) -> None:
        """A segment may not name itself, through other segments either."""
        reads = {s.key: s.reads() for s in self.list(project_id)}
        reads[checked.key] = segments_named(checked.definition)
        path = _cycle(checked.key, reads)
        if path:
            raise BadRequest(f"definition: the segments {' -> '.join(path)} name each other"
                             " in a cycle", code="INVALID_SEGMENT")

    def _computed(self, segment: Segment, token_id: int | None) -> None:
        if segment.created_by is CreatedBy.DIRECT:
            self.computes.trigger([segment.key], token_id=token_id)

    # -- computing (TagComputeService.others) ----------------------------------------

    def owns(self, key: str) -> bool:
        return is_segment_key(key)

    def ordered(self, keys: list[str] | None) -> list[str]:
        """`keys` (each must exist; None: the DAILY DIRECT segments), a segment after the
        segments it names."""
        with self.db.connect() as conn:
            every = {s.key: s for s in repository.every(conn)}
        if keys is None:
            keys = [k for k, s in every.items()
                    if s.scheduler == "DAILY" and s.created_by is CreatedBy.DIRECT]
        for key in keys:
            if key not in every:
                raise NotFound(f"segment {key!r} does not exist", code="SEGMENT_NOT_FOUND")
        wanted, done, out = set(keys), set(), []

        def visit(key: str) -> None:
            if key in done:
                return
            done.add(key)
            for read in sorted(every[key].reads() if key in every else ()):
                visit(read)
            if key in wanted:
                out.append(key)

        for key in keys:
            visit(key)
        return out

    def target(self, key: str) -> tuple[CatalogEntry, Definition | None]:
        """A DIRECT segment: its checked condition; FROM_FILES: nothing (its members stay
        as uploaded); a deleted one: no members."""
        with self.db.connect() as conn:
            segment = repository.by_key(conn, key)
        if segment is None:
            return membership_column(key), Membership(None)
        if segment.created_by is CreatedBy.FROM_FILES:
            return segment.column, None
        context = self.context(segment.project_id, without=key)
        return segment.column, Membership(parse_condition(segment.definition, context))

    # -- members, estimates, portraits -----------------------------------------------

    def upload_members(self, project_id: str, key: str, path: Path, identity_key: str
                       ) -> MembersReport:
        """A FROM_FILES segment's members: exactly the users holding the file's values."""
        segment = self.get(project_id, key)
        if segment.created_by is not CreatedBy.FROM_FILES:
            raise BadRequest(f"{key} is a DIRECT segment: its members come from its "
                             "definition", code="NOT_FROM_FILES")
        entry = self.catalog.by_key().get(identity_key)
        if entry is None or not entry.is_identity:
            raise BadRequest(f"the file's header {identity_key!r} is not an identity key of "
                             "the catalog (id_…)", code="UNKNOWN_IDENTITY")
        engine = self._engine()
        report = engine.replace_members(segment.column, identity_key, path)
        self.computes.record_state(ComputeState(key, "FINISH", None, None, datetime.now(UTC),
                                          report.members))
        self.computes.measure_coverage(engine, [segment.column])
        log.info("segment %s: %d members from %d values (%d unknown)", key, report.members,
                 report.values, report.unknown)
        return report

    def estimate(self, project_id: str, definition: Any) -> dict[str, Any]:
        """How many users a definition not yet saved selects, quickly: on a sample of the
        users when there are many (the answer says so); a saved segment's count is exact."""
        condition = parse_condition(definition, self.context(project_id))
        engine = self._engine()
        total = engine.user_count()
        sample = ESTIMATE_SAMPLE_USERS / total if total > ESTIMATE_SAMPLE_USERS else None
        users = engine.count_members(condition, as_of=self.computes.today(), sample=sample)
        return {"users": users, "totalUsers": total, "exact": sample is None,
                "sampleRatio": 1.0 if sample is None else sample}

    def portrait(self, group: CatalogEntry, keys: Sequence[str], top: int, bins: int,
                 language: Language) -> dict[str, Any]:
        """GrowingIO's 群体画像: each key's values among the group's users against all
        users (the group: a segment's membership column or a tag)."""
        if not keys:
            raise BadRequest("properties: name at least one attribute or tag",
                             code="INVALID_PORTRAIT")
        if len(keys) > MAX_PORTRAIT_KEYS:
            raise BadRequest(f"properties: at most {MAX_PORTRAIT_KEYS} keys, got {len(keys)}",
                             code="INVALID_PORTRAIT")
        if not 1 <= top <= MAX_TOP or not 1 <= bins <= MAX_BINS:
            raise BadRequest(f"top must be between 1 and {MAX_TOP}, bins between 1 and "
                             f"{MAX_BINS}", code="INVALID_PORTRAIT")
        catalog = self.catalog.by_key()
        unknown = [k for k in keys if k not in catalog or catalog[k].is_identity]
        if unknown:
            raise BadRequest(f"properties: not attributes or tags: {', '.join(unknown)}",
                             code="UNKNOWN_PROPERTIES")
        engine = self._engine()
        found = [(catalog[k], engine.portrait(catalog[k], group, top=top, bins=bins))
                 for k in keys]
        first = found[0][1]
        return {"key": group.key, "groupUsers": first.group_users,
                "totalUsers": first.all_users,
                "properties": [portrait_document(e, p, language) for e, p in found]}

    def selection(self, project_id: str, key: str) -> SegmentSelection:
        return SegmentSelection(self.get(project_id, key))


def _cycle(start: str, reads: Mapping[str, frozenset[str]]) -> list[str] | None:
    """A path start -> ... -> start through `reads`, or None."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        key, path = stack.pop()
        for read in sorted(reads.get(key, ())):
            if read == start:
                return [*path, start]
            if read not in seen:
                seen.add(read)
                stack.append((read, [*path, read]))
    return None


def segment_document(segment: Segment, detector: dict[str, Any],
                     token_names: Mapping[int, str]) -> dict[str, Any]:
    """A segment as GrowingIO's segment list shows one (spec section 8), with tagport's
    `projectId` and `definition`."""
    def who(token_id: int | None) -> tuple[str | None, str | None]:
        if token_id is None:
            return None, None
        return str(token_id), token_names.get(token_id)

    creator_id, creator = who(segment.creator_id)
    updater_id, updater = who(segment.updater_id)
    return {
        "id": segment.key, "name": segment.name, "key": segment.key,
        "createdBy": segment.created_by.value, "description": segment.description,
        "scheduler": segment.scheduler, "detector": detector,
        "creatorId": creator_id, "creator": creator,
        "createdAt": segment.created_at.isoformat(timespec="milliseconds"),
        "updaterId": updater_id, "updater": updater,
        "updatedAt": segment.updated_at.isoformat(timespec="milliseconds"),
        "projectId": segment.project_id, "definition": segment.definition,
    }


def portrait_document(entry: CatalogEntry, portrait: Portrait,
                      language: Language) -> dict[str, Any]:
    def share(n: int, of: int) -> float:
        return n / of if of else 0.0

    g, a = portrait.group_users, portrait.all_users
    return {
        "key": entry.key, "name": display_name(entry, language),
        "valueType": {"type": entry.value_type.value.upper(), "isArray": entry.is_array},
        "groupCovered": portrait.group_covered, "allCovered": portrait.all_covered,
        "values": [{"value": json_value(v), "groupUsers": gn, "groupRatio": share(gn, g),
                    "allUsers": an, "allRatio": share(an, a)}
                   for v, gn, an in portrait.values],
        "bins": [{"from": lo, "to": hi, "groupUsers": gn, "groupRatio": share(gn, g),
                  "allUsers": an, "allRatio": share(an, a)}
                 for lo, hi, gn, an in portrait.bins],
    }

