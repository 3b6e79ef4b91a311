"""Reading profiles through the API: the tags with their coverage, one tag with its
definition in words, a page of a tag's users, one user found by an identity and the
user's recent events. Messages follow the caller's language."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tagport.catalog.coverage import CoverageStore, StoredCoverage
from tagport.catalog.models import CatalogEntry, EventDefinition, Kind
from tagport.catalog.service import CatalogService
from tagport.engines.base import Engine
from tagport.errors import BadRequest, NotFound
from tagport.exports.formats import FileFormat, OutputFormat
from tagport.exports.plan import ExportPlan
from tagport.exports.selection import Selection, TagSelection
from tagport.exports.spec import normalise_properties
from tagport.i18n import Language, Text
from tagport.profiles.describe import describe
from tagport.profiles.growingio import UNKNOWN_USER, growingio_user

MAX_PAGE_PROPERTIES = 20
MAX_PAGE_LIMIT = 1000
MAX_TOP, MAX_BINS = 100, 50  # a distribution's most common values, a histogram's bins
MAX_EVENTS = 200  # a user's recent events, at most
MAX_PAGE_OFFSET = 2**63 - 1  # SQL's BIGINT: a larger one fails in every store we read
TAG_TYPE = "IMPORT"  # tagport's tags hold values loaded from files (GrowingIO's imported tags)

TAG_NOT_FOUND = Text("用户标签 {key!r} 不存在", "user tag {key!r} does not exist")
IDENTITY_NOT_FOUND = Text("用户身份 {key!r} 不存在", "identity {key!r} does not exist")
TOO_MANY = Text("properties：最多 {max} 个不同的属性，收到 {got} 个",
                "properties: at most {max} distinct properties, got {got}")
UNKNOWN = Text("properties：未知的键：{keys}", "properties: unknown keys: {keys}")
BAD_LIMIT = Text("limit：必须在 1 到 {max} 之间，收到 {got}",
                 "limit: must be between 1 and {max}, got {got}")
BAD_DISTRIBUTION = Text("top 必须在 1 到 {top} 之间，bins 必须在 1 到 {bins} 之间",
                        "top must be between 1 and {top}, bins between 1 and {bins}")
BAD_EVENTS_LIMIT = Text("limit：必须在 1 到 {max} 之间，收到 {got}",
                       "limit: must be between 1 and {max}, got {got}")
BAD_OFFSET = Text("offset：必须在 0 到 {max} 之间，收到 {got}",
                  "offset: must be between 0 and {max}, got {got}")


@dataclass(frozen=True)
class Page:
    """One page of a list, in GrowingIO's envelope."""

    limit: int
    offset: int
    total: int
    values: list[dict[str, Any]]
    has_next: bool

    def document(self) -> dict[str, Any]:
        return {"limit": self.limit, "offset": self.offset, "totalCount": self.total,
                "hasNextPage": self.has_next, "hasPreviousPage": self.offset > 0,
                "values": self.values}


def check_page(limit: int, offset: int, language: Language) -> None:
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise BadRequest(BAD_LIMIT(language, max=MAX_PAGE_LIMIT, got=limit),
                         code="INVALID_LIMIT")
    if not 0 <= offset <= MAX_PAGE_OFFSET:
        raise BadRequest(BAD_OFFSET(language, max=MAX_PAGE_OFFSET, got=offset),
                         code="INVALID_OFFSET")


def display_name(entry: CatalogEntry, language: Language) -> str:
    return entry.name_en if language is Language.US and entry.name_en else entry.name


def tag_document(tag: CatalogEntry, coverage: StoredCoverage | None,
                 language: Language, computed: dict[str, Any] | None = None) -> dict[str, Any]:
    """A tag as `GET /v1/api/user_tags` lists it. A loaded tag's `detector.stage` is
    NONE until a load after the tag was defined has measured it; a computed tag's type
    is its compute type and `computed` its detector (tags.service)."""
    detector: dict[str, Any] = {"stage": "NONE", "detectedAt": None, "totalUsers": 0,
                                "usersRatio": 0.0}
    if computed is not None:
        detector = computed
    elif coverage is not None:
        detector = {"stage": "FINISH",
                    "detectedAt": coverage.measured_at.isoformat(timespec="milliseconds"),
                    "totalUsers": coverage.covered_users, "usersRatio": coverage.ratio}
    return {
        "id": tag.key, "key": tag.key, "name": display_name(tag, language),
        "type": tag.compute_type or TAG_TYPE,
        "description": tag.description,
        "valueType": {"type": tag.value_type.value.upper(), "isArray": tag.is_array},
        "detector": detector,
    }


class LookupService:
    def __init__(self, catalog: CatalogService, coverage: CoverageStore,
                 engine: Callable[[], Engine],
                 detectors: Callable[[], dict[str, dict[str, Any]]] = dict) -> None:
        self.catalog = catalog
        self.coverage = coverage
        self.detectors = detectors  # computed tags' detectors, by key
        self._engine = engine

    def tags(self, limit: int, offset: int, language: Language) -> Page:
        """The user tags in catalog order, with their stored coverage."""
        check_page(limit, offset, language)
        tags = [e for e in self.catalog.list() if e.kind is Kind.TAG]
        coverage = self.coverage.all()
        computed = self.detectors() if any(t.compute for t in tags) else {}
        values = [tag_document(t, coverage.get(t.key), language, computed.get(t.key))
                  for t in tags[offset:offset + limit]]
        return Page(limit, offset, len(tags), values, offset + limit < len(tags))

    def tag_detail(self, tag_key: str, language: Language) -> dict[str, Any]:
        """One tag as the list shows it, with its `compute` definition as written (null
        for a loaded tag), its `scheduler`, and `definition`: the definition in words in
        the caller's language (profiles.describe)."""
        catalog = self.catalog.by_key()
        tag = self.tag(tag_key, language)
        computed = self.detectors().get(tag.key) if tag.compute else None
        doc = tag_document(tag, self.coverage.all().get(tag.key), language, computed)
        doc["compute"] = tag.compute
        doc["scheduler"] = (tag.scheduler or "DAILY") if tag.compute else None
        doc["definition"] = (describe(tag.compute, catalog, self.catalog.events(), language)
                             if tag.compute else None)
        return doc

    def tag_users(self, tag_key: str, properties: Sequence[str], limit: int, offset: int,
                  language: Language) -> Page:
        """A page of the users the tag covers, in ascending gio_id order."""
        tag = self.tag(tag_key, language)
        return self.selection_users(TagSelection(tag), properties, limit, offset, language)

    def tag(self, tag_key: str, language: Language) -> CatalogEntry:
        """The user tag, or 404 `TAG_NOT_FOUND`."""
        tag = self.catalog.by_key().get(tag_key)
        if tag is None or tag.kind is not Kind.TAG:
            raise NotFound(TAG_NOT_FOUND(language, key=tag_key), code="TAG_NOT_FOUND")
        return tag

    def selection_users(self, selection: Selection, properties: Sequence[str], limit: int,
                        offset: int, language: Language) -> Page:
        """A page of a selection's users (a tag's, a segment's members), by gio_id."""
        catalog = self.catalog.by_key()
        columns = self._columns(properties, catalog, language)
        check_page(limit, offset, language)
        engine = self._engine()
        plan = ExportPlan(selection, columns, OutputFormat(FileFormat.JSON))
        rows = engine.tag_users(plan, limit + 1, offset)
        values = [growingio_user(row, columns) for row in rows[:limit]]
        return Page(limit, offset, self._covered(selection.column, engine), values,
                    len(rows) > limit)

    def distribution(self, tag_key: str, top: int, bins: int,
                     language: Language) -> dict[str, Any]:
        """How a tag's values spread over the users, measured on the engine: the `top`
        most common values, or `bins` equal-width bins for numbers, each with its users
        and their share of all users."""
        tag = self.catalog.by_key().get(tag_key)
        if tag is None or tag.kind is not Kind.TAG:
            raise NotFound(TAG_NOT_FOUND(language, key=tag_key), code="TAG_NOT_FOUND")
        return self.entry_distribution(tag, top, bins, language)

    def entry_distribution(self, entry: CatalogEntry, top: int, bins: int,
                           language: Language) -> dict[str, Any]:
        """`distribution` of a catalog entry already found (an attribute or a tag)."""
        if not 1 <= top <= MAX_TOP or not 1 <= bins <= MAX_BINS:
            raise BadRequest(BAD_DISTRIBUTION(language, top=MAX_TOP, bins=MAX_BINS),
                             code="INVALID_DISTRIBUTION")
        found = self._engine().distribution(entry, top=top, bins=bins)
        share = (lambda n: n / found.all_users) if found.all_users else (lambda n: 0.0)
        return {
            "key": entry.key, "name": display_name(entry, language),
            "valueType": {"type": entry.value_type.value.upper(), "isArray": entry.is_array},
            "totalUsers": found.all_users, "coveredUsers": found.covered,
            "coveredRatio": share(found.covered),
            "values": [{"value": json_value(v), "users": n, "ratio": share(n)}
                       for v, n in found.values],
            "bins": [{"from": lo, "to": hi, "users": n, "ratio": share(n)}
                     for lo, hi, n in found.bins],
        }

    def user(self, user_key: str, value: str, language: Language) -> dict[str, Any]:
        """One user's identities (keyed `ids_<k>`), attributes and tags, found by any
        identity value; a value no user holds is GrowingIO's unknown user, `gioId` "0"."""
        key = "id_" + user_key.removeprefix("ids_").removeprefix("id_")
        catalog = self.catalog.list()
        if not any(e.key == key and e.is_identity for e in catalog):
            raise NotFound(IDENTITY_NOT_FOUND(language, key=key), code="IDENTITY_NOT_FOUND")
        user = self._engine().find_user(key, value, catalog)
        if user is None:
            return dict(UNKNOWN_USER)
        return growingio_user(user, catalog, identity_prefix="ids_")

    def user_events(self, user_key: str, value: str, limit: int,
                    language: Language) -> dict[str, Any]:
        """The most recent events of the user holding `value` for identity `user_key`,
        newest first (time, then load order): each with its event's display name and its
        attributes' (in the event catalog's order). A value no user holds: `gioId` "0"
        and no events, as the single-user route answers."""
        key = self._identity(user_key, language)
        if not 1 <= limit <= MAX_EVENTS:
            raise BadRequest(BAD_EVENTS_LIMIT(language, max=MAX_EVENTS, got=limit),
                             code="INVALID_LIMIT")
        engine = self._engine()
        user = engine.find_user(key, value, [])
        if user is None:
            return {"gioId": UNKNOWN_USER["gioId"], "limit": limit, "values": []}
        definitions = self.catalog.events()
        values = [_event_document(e, definitions.get(e["event"]), language)
                  for e in engine.recent_events(int(user["gio_id"]), limit)]
        return {"gioId": str(user["gio_id"]), "limit": limit, "values": values}

    def _identity(self, user_key: str, language: Language) -> str:
        key = "id_" + user_key.removeprefix("ids_").removeprefix("id_")
        if not any(e.key == key and e.is_identity for e in self.catalog.list()):
            raise NotFound(IDENTITY_NOT_FOUND(language, key=key), code="IDENTITY_NOT_FOUND")
        return key

    @staticmethod
    def _columns(properties: Sequence[str], catalog: dict[str, CatalogEntry],
                 language: Language) -> tuple[CatalogEntry, ...]:
        keys = normalise_properties(list(properties))
        if len(keys) > MAX_PAGE_PROPERTIES:
            raise BadRequest(TOO_MANY(language, max=MAX_PAGE_PROPERTIES, got=len(keys)),
                             code="TOO_MANY_PROPERTIES")
        unknown = [k for k in keys if k not in catalog]
        if unknown:
            raise BadRequest(UNKNOWN(language, keys=", ".join(unknown)),
                             code="UNKNOWN_PROPERTIES")
        return tuple(catalog[k] for k in keys)

    def _covered(self, tag: CatalogEntry, engine: Engine) -> int:
        """The stored coverage; measured now only for a tag no load has measured yet."""
        stored = self.coverage.all().get(tag.key)
        if stored is not None:
            return stored.covered_users
        return engine.tag_coverage([tag]).covered[tag.key]


def _event_document(event: dict[str, Any], definition: EventDefinition | None,
                    language: Language) -> dict[str, Any]:
    def name(thing: Any, fallback: str) -> str:
        if thing is None:
            return fallback
        return thing.name_en if language is Language.US and thing.name_en else thing.name

    known = dict(definition.attributes) if definition is not None else {}
    order = [k for k in known if k in event["attributes"]]
    order += sorted(k for k in event["attributes"] if k not in known)
    return {
        "event": event["event"], "name": name(definition, event["event"]),
        "time": event["time"].isoformat(timespec="milliseconds") + "Z",
        "dt": event["dt"].isoformat(), "id": event["id"],
        "attributes": [{"key": k, "name": name(known.get(k), k),
                        "value": json_value(event["attributes"][k])} for k in order],
    }


def json_value(value: Any) -> Any:
    """Dates and datetimes as the export writes them; other values as they are."""
    return str(value) if isinstance(value, date | datetime) else value
