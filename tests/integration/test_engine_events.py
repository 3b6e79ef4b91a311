"""Loading events, the same on every engine (spec section 5): resolution to users, new
users for unknown identities, each rejection with its line, all or nothing, idempotence
on `id`, local days, epoch milliseconds, the three formats, `seq` and the stored layout.

Each behaviour is loaded through `Engine.load_events` and read back from the stored
`events` relation (tests/load_support.py's `Events`), so the assertions hold for any
engine.
"""

from __future__ import annotations

import importlib
import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tagport.catalog.models import EventAttribute, EventDefinition, ValueType
from tagport.engines.base import InputFormat
from tagport.engines.staging.events import TIME_WORDS, UNKNOWN_USER
from tagport.errors import InvalidInput
from tests.load_support import CATALOG, DEVICE, ENGINES, EVENTS, UID, Events, lines

PAY, VIEW = "payOrderSuccess", "view"


@pytest.fixture(params=list(ENGINES.values()), ids=list(ENGINES))
def engine(request, tmp_path):
    engine = request.param(tmp_path)
    yield engine
    engine.close()


@pytest.fixture
def events(engine, tmp_path) -> Events:
    return Events(engine, tmp_path)


def pay(time="2026-11-20T10:00:00+08:00", ids=None, id=None, **attributes) -> dict:
    doc = {"event": PAY, "time": time, "identifications": ids or {UID: "C001"},
           "attributes": attributes}
    return doc if id is None else {**doc, "id": id}


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


# --- the layout ---------------------------------------------------------------------------


def test_the_stored_relation_has_the_layout_then_the_attributes_a_load_brought(events, engine):
    events.load(pay(amount=9.5, category="书"))
    columns = events.columns()
    assert list(columns)[:6] == ["gio_id", "event", "time", "dt", "id", "seq"]
    assert set(columns) == {"gio_id", "event", "time", "dt", "id", "seq", "amount", "category"}
    expected = {"duckdb": ["UBIGINT", "VARCHAR", "TIMESTAMP", "DATE", "VARCHAR", "BIGINT",
                           "DOUBLE", "VARCHAR"],
                "spark": ["bigint", "string", "timestamp_ntz", "date", "string", "bigint",
                          "double", "string"]}[engine.name]
    assert [columns[c] for c in [*list(columns)[:6], "amount", "category"]] == expected
    events.load({"event": VIEW, "time": "2026-11-20T11:00:00+08:00",
                 "identifications": {UID: "C001"},
                 "attributes": {"first": True, "since": "2026-01-02", "seen": "2026-11-20 08:00:00"}})
    assert {"first", "since", "seen"} <= set(events.columns())


# --- resolution ---------------------------------------------------------------------------


def test_events_resolve_to_existing_users_by_any_identity(events):
    events.users.load({"identifications": {UID: "C001", DEVICE: "D1"}},
                      {"identifications": {UID: "C002"}})
    report = events.load(pay(ids={DEVICE: "D1"}, id="e-1"), pay(ids={UID: "C002"}, id="e-2"))
    assert (report.applied, report.appended, report.users_created, report.rejected) == (
        True, 2, 0, 0)
    assert [(e["gio_id"], e["id"]) for e in events.read()] == [(1, "e-1"), (2, "e-2")]
    assert events.engine.user_count() == 2


def test_unknown_identities_create_users_with_their_values_mapped(events):
    events.users.load({"identifications": {UID: "C001"}})
    report = events.load(pay(ids={DEVICE: "D9"}), pay(ids={DEVICE: "D9", UID: "C777"}),
                         pay(ids={UID: "C001", DEVICE: "D1"}))
    assert (report.appended, report.users_created) == (3, 1)
    assert sorted(report.keys_with_data) == [UID, DEVICE]
    assert [e["gio_id"] for e in events.read()] == [2, 2, 1]
    assert events.users.gio_id_of(DEVICE, "D9") == 2
    assert events.users.gio_id_of(UID, "C777") == 2
    assert events.users.gio_id_of(DEVICE, "D1") == 1  # a known user gains the new value
    # a later user load finds the anonymous user by its identity
    assert events.users.load({"identifications": {DEVICE: "D9"}}).updated == 1


def test_known_users_only_rejects_the_events_of_unknown_identities(events):
    events.users.load({"identifications": {UID: "C001"}})
    report = events.load(pay(), pay(ids={UID: "C404"}), known_users_only=True)
    assert not report.applied
    assert [(r.line, r.field, r.reason) for r in report.rejects] == [(2, None, UNKNOWN_USER)]
    report = events.load(pay(), pay(ids={UID: "C404"}), known_users_only=True,
                         skip_invalid=True)
    assert (report.applied, report.appended, report.users_created, report.rejected) == (
        True, 1, 0, 1)
    assert events.users.gio_id_of(UID, "C404") is None
    assert events.engine.user_count() == 1


def test_identities_of_two_users_reject_the_event(events):
    events.users.load({"identifications": {UID: "C001"}}, {"identifications": {DEVICE: "D2"}})
    report = events.load(pay(ids={UID: "C001", DEVICE: "D2"}))
    assert [(r.line, r.field, r.reason) for r in report.rejects] == [
        (1, None, "identity values belong to different users: id_$basic_userId 'C001' is"
                  " gio_id 1, id_device 'D2' is gio_id 2")]
    assert not report.applied and events.read() == []


def test_the_events_of_one_identity_set_share_its_resolution(events):
    """Events resolve one record per distinct set of identity values: every event of a
    set gets its user, its rejects, in its own line."""
    events.users.load({"identifications": {UID: "C001"}}, {"identifications": {DEVICE: "D2"}})
    both = {UID: "C001", DEVICE: "D2"}
    report = events.load(pay(ids=both), pay(ids={UID: "C001"}), pay(ids=both),
                         pay(ids={UID: "C9"}), pay(ids={UID: "C9"}), skip_invalid=True)
    reason = ("identity values belong to different users: id_$basic_userId 'C001' is"
              " gio_id 1, id_device 'D2' is gio_id 2")
    assert [(r.line, r.field, r.reason) for r in report.rejects] == [
        (1, None, reason), (3, None, reason)]
    assert (report.appended, report.users_created, report.rejected) == (3, 1, 2)
    c9 = events.users.gio_id_of(UID, "C9")
    assert [e["gio_id"] for e in events.read()] == [1, c9, c9]


def test_an_identity_given_several_values_resolves_with_the_events_sharing_one(events):
    events.users.load({"identifications": {UID: "C001"}})
    report = events.load(pay(ids={UID: ["C001", "C7"]}), pay(ids={UID: "C001"}),
                         pay(ids={UID: "C7"}), pay(ids={UID: "C8"}))
    assert (report.applied, report.appended, report.users_created) == (True, 4, 1)
    assert [e["gio_id"] for e in events.read()] == [1, 1, 1, 2]
    assert events.users.gio_id_of(UID, "C7") == 1


def test_a_skipped_event_with_several_values_is_not_appended_to_a_set_of_one(events):
    """The kept events name one value each, the rejected one two: it shares its first
    value with a kept set, yet stays out."""
    events.users.load({"identifications": {UID: "C001"}})
    report = events.load(pay(ids={UID: "C001"}, amount=1.5),
                         pay(ids={UID: ["C001", "C2"]}, amount="many"),
                         pay(ids={UID: "C3"}, amount=2.5), skip_invalid=True)
    assert [(r.line, r.field) for r in report.rejects] == [(2, "amount")]
    assert (report.appended, report.users_created) == (2, 1)
    assert [(e["gio_id"], e["amount"]) for e in events.read("amount")] == [(1, 1.5), (2, 2.5)]
    assert events.users.gio_id_of(UID, "C2") is None


def test_known_users_only_rejects_every_event_of_an_unknown_identity(events):
    events.users.load({"identifications": {UID: "C001"}})
    report = events.load(pay(ids={UID: "C404"}), pay(), pay(ids={UID: "C404"}),
                         known_users_only=True)
    assert [(r.line, r.field, r.reason) for r in report.rejects] == [
        (1, None, UNKNOWN_USER), (3, None, UNKNOWN_USER)]
    assert not report.applied


# --- rejections -------------------------------------------------------------------------


@pytest.mark.parametrize("doc, field, reason", [
    ({"event": "refund", "time": "2026-11-20T10:00:00Z", "identifications": {UID: "C1"}},
     "event", "unknown event 'refund': it is not in the event catalog"),
    ({"time": "2026-11-20T10:00:00Z", "identifications": {UID: "C1"}},
     "event", "no event key: every event names its event"),
    (pay(colour="red"), "colour", "unknown attribute 'colour': no event of the event catalog has it"),
    ({**pay(), "event": VIEW, "attributes": {"amount": 1}},
     "amount", "event 'view' has no attribute 'amount'"),
    (pay(amount="abc"), "amount", "value 'abc' is not a double (a finite number)"),
    (pay(amount=[1]), "amount", "the value is a JSON array, not a double (a finite number)"),
    (pay(quantity=1.5), "quantity", "value '1.5' is not an int (a whole number)"),
    ({**pay(), "event": VIEW, "attributes": {"first": "yes"}},
     "first", "value 'yes' is not a bool (true, false, 1 or 0)"),
    ({**pay(), "event": VIEW, "attributes": {"since": "2026-13-01"}},
     "since", "value '2026-13-01' is not a date (YYYY-MM-DD)"),
    ({**pay(), "identifications": {}}, None, "an event needs at least one identity value"),
    ({**pay(), "identifications": {"id_shop": "S1", UID: "C1"}},
     "id_shop", "unknown identity 'id_shop': it is not an identity of the catalog"),
    ({"event": PAY, "identifications": {UID: "C1"}}, "time", "no time: every event needs its time"),
    (pay(time=None), "time", "no time: every event needs its time"),
    (pay(time="yesterday"), "time", f"value 'yesterday' is not {TIME_WORDS}"),
    (pay(time="2026-11-20"), "time", f"value '2026-11-20' is not {TIME_WORDS}"),
    (pay(time="2026-02-30T10:00:00"), "time", f"value '2026-02-30T10:00:00' is not {TIME_WORDS}"),
    ({**pay(), "id": {"x": 1}}, "id", "the id must be a string or a whole number"),
    ({**pay(), "who": "me"}, "who",
     "unknown top-level field 'who'; expected event, time, id, identifications, attributes"),
    ("{not json", None, "not valid JSON"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_a_bad_event_is_rejected_with_its_line_field_and_reason(events, doc, field, reason):
    report = events.load(pay(id="ok-1"), doc, pay(id="ok-2"))
    assert not report.applied
    assert [(r.line, r.field, r.reason) for r in report.rejects] == [(2, field, reason)]
    assert report.rejected == 1 and events.read() == []


def test_nothing_is_applied_when_any_event_is_rejected(events):
    report = events.load(pay(ids={UID: "C1"}), pay(ids={UID: "C2"}, time="never"))
    assert (report.applied, report.appended, report.rejected) == (False, 0, 1)
    assert events.read() == [] and events.engine.user_count() == 0


def test_skip_invalid_applies_the_valid_events_and_reports_the_rest(events):
    report = events.load(pay(ids={UID: "C1"}, id="a"), pay(time="never", id="b"),
                         pay(ids={UID: "C3"}, id="c", amount="x"), pay(ids={UID: "C4"}, id="d"),
                         skip_invalid=True)
    assert (report.applied, report.appended, report.users_created, report.rejected) == (
        True, 2, 2, 2)
    assert lines(report) == [(2, "time"), (3, "amount")]
    assert [e["id"] for e in events.read()] == ["a", "d"]


def test_a_csv_header_with_an_unknown_column_or_without_time_refuses_the_file(events):
    report = events.csv(f"event,{UID},colour\n{PAY},C1,red\n{PAY},C2,blue\n")
    assert not report.applied and report.rejected == 2
    assert [(r.line, r.field, r.reason) for r in report.rejects] == [
        (1, "colour", "unknown column 'colour': not event, time or id, an identity of the"
                      " catalog (id_<k>) or an attribute of an event"),
        (1, "time", "the file has no 'time' column")]


def test_an_attribute_stored_with_another_type_refuses_the_load(events):
    events.load(pay(quantity=2))
    changed = {**EVENTS, PAY: EventDefinition(PAY, "支付", attributes={
        "quantity": EventAttribute("quantity", "数量", ValueType.DOUBLE)})}
    path = events.path("jsonl")
    path.write_text('{"event": "payOrderSuccess", "time": 1, "identifications":'
                    ' {"id_$basic_userId": "C1"}, "attributes": {"quantity": 2.5}}\n')
    with pytest.raises(InvalidInput, match="event attribute 'quantity' is stored as"):
        events.engine.load_events(path, InputFormat.JSONL, CATALOG, changed, zone=UTC)
    assert len(events.read()) == 1


# --- idempotence ------------------------------------------------------------------------


def test_loading_the_same_file_twice_changes_nothing(events):
    path = events.path("jsonl")
    path.write_text("\n".join(json.dumps(e) for e in [
        pay(ids={UID: "C1"}, id="e-1", amount=1), pay(ids={DEVICE: "D7"}, id="e-2"),
        pay(ids={UID: "C1"}, time="2026-11-21T10:00:00+08:00", id="e-3")]) + "\n")
    first = events.file(path, InputFormat.JSONL)
    stored = events.read("amount")
    again = events.file(path, InputFormat.JSONL)
    assert (first.appended, first.duplicates, first.users_created) == (3, 0, 2)
    assert (again.applied, again.appended, again.duplicates, again.users_created) == (
        True, 0, 3, 0)
    assert events.read("amount") == stored and events.engine.user_count() == 2


def test_an_id_repeated_in_a_file_keeps_the_first_event(events):
    report = events.load(pay(id="e-1", amount=1), pay(id="e-2"), pay(id="e-1", amount=2))
    assert (report.appended, report.duplicates) == (2, 1)
    assert [(e["id"], e["amount"]) for e in events.read("amount")] == [("e-1", 1.0), ("e-2", None)]


def test_events_without_an_id_are_always_appended(events):
    events.load(pay())
    assert events.load(pay()).appended == 1
    assert len(events.read()) == 2


def test_a_stored_id_is_a_duplicate_on_its_own_day(events):
    events.load(pay(id="e-1"))
    report = events.load(pay(id="e-1", time="2026-11-25T10:00:00+08:00"), pay(id="e-1"))
    assert (report.appended, report.duplicates) == (1, 1)
    assert [e["dt"] for e in events.read()] == [date(2026, 11, 20), date(2026, 11, 25)]


# --- time, days and seq -------------------------------------------------------------------


def test_dt_is_the_local_day_in_the_zone_at_midnight_edges(events):
    report = events.load(pay(time="2026-11-20T15:59:59Z"), pay(time="2026-11-20T16:00:00Z"),
                         pay(time="2026-11-21T00:00:00+08:00"), pay(time="2026-11-21 00:00:00"),
                         pay(time="2026-11-20T23:59:59.5"))
    assert report.appended == 5
    assert [(e["time"], e["dt"]) for e in events.read()] == [
        (utc("2026-11-20T15:59:59+00:00"), date(2026, 11, 20)),
        (utc("2026-11-20T16:00:00+00:00"), date(2026, 11, 21)),
        (utc("2026-11-20T16:00:00+00:00"), date(2026, 11, 21)),
        (utc("2026-11-21T00:00:00+08:00"), date(2026, 11, 21)),  # no offset: Asia/Shanghai
        (utc("2026-11-20T23:59:59.500000+08:00"), date(2026, 11, 20))]


def test_the_same_instant_falls_on_the_day_of_the_zone_given(events):
    events.load(pay(time="2026-11-20T16:30:00Z"), zone=UTC)
    assert events.read()[0]["dt"] == date(2026, 11, 20)


def test_integer_times_are_epoch_milliseconds(events):
    before, after = ms("2026-11-20T15:59:59+00:00"), ms("2026-11-20T16:00:00+00:00")
    events.load(pay(time=before), pay(time=str(after)))
    assert [(e["time"], e["dt"]) for e in events.read()] == [
        (utc("2026-11-20T15:59:59+00:00"), date(2026, 11, 20)),
        (utc("2026-11-20T16:00:00+00:00"), date(2026, 11, 21))]


@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "America/New_York", "Asia/Shanghai"])
def test_integer_parquet_times_fall_on_the_local_day_across_daylight_saving(events,
                                                                             zone_name):
    """A Parquet file's integer times take their day from the zone's offset, which may
    change within the file (daylight saving): each one as the zone says it."""
    zone = ZoneInfo(zone_name)
    local = [datetime(2026, 3, 28, 23, 59, 59), datetime(2026, 3, 29, 0, 0),
             datetime(2026, 3, 29, 1, 59, 59), datetime(2026, 3, 29, 3, 0),
             datetime(2026, 3, 29, 23, 59, 59, 999000), datetime(2026, 3, 30, 0, 0),
             datetime(2026, 10, 24, 23, 59, 59), datetime(2026, 10, 25, 2, 30),
             datetime(2026, 10, 25, 23, 59, 59), datetime(2026, 10, 26, 0, 0),
             datetime(2026, 11, 1, 0, 30), datetime(2026, 11, 1, 23, 59, 59)]
    times = [int(t.replace(tzinfo=zone).timestamp() * 1000) for t in local]
    times.append(-1)  # not a time: rejected, as its text would be
    report = events.parquet(pa.table({
        "event": [PAY] * len(times), "time": pa.array(times, pa.int64()),
        UID: [f"C{i}" for i in range(len(times))]}), zone=zone, skip_invalid=True)
    assert [(r.line, r.field) for r in report.rejects] == [(len(times), "time")]
    expected = [datetime.fromtimestamp(t / 1000, zone).date() for t in times[:-1]]
    assert [e["dt"] for e in events.read()] == expected


@pytest.mark.parametrize("hours", [[1, 2, 3, 4], [3, 1, None, 4, 2], [1, 3, None, 2]])
def test_duckdb_stores_a_load_in_day_time_seq_order_sorted_or_not(events, engine, hours):
    """The DuckDB table keeps each load's rows in (dt, time, seq) order, so that zone maps
    on `dt` prune; a file already in time order is appended without a sort."""
    if engine.name != "duckdb":
        pytest.skip("the DuckDB table's physical order")
    docs = [pay(time=f"2026-11-20T{h:02d}:00:00+08:00") if h is not None else
            pay(time="not a time") for h in hours]
    assert events.load(*docs, skip_invalid=True).appended == sum(h is not None for h in hours)
    cur = engine.store.cursor()
    try:
        stored = cur.execute('SELECT dt, "time", seq FROM events').fetchall()  # scan order
    finally:
        cur.close()
    assert stored == sorted(stored)


def test_seq_grows_in_line_order_within_a_file_and_across_loads(events):
    same = "2026-11-20T10:00:00+08:00"
    events.load(pay(time="2026-11-22T10:00:00+08:00", id="a"), pay(time=same, id="b"),
                pay(time=same, id="c"))
    events.load(pay(time=same, id="d"), pay(time="2026-11-19T10:00:00+08:00", id="e"))
    stored = events.read()
    assert [e["id"] for e in stored] == ["a", "b", "c", "d", "e"]  # ordered by seq
    seqs = [e["seq"] for e in stored]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    # at the same time, the one loaded first has the smaller seq
    ties = sorted((e for e in stored if e["time"] == utc(same)), key=lambda e: e["seq"])
    assert [e["id"] for e in ties] == ["b", "c", "d"]


# --- the three formats --------------------------------------------------------------------


EXPECTED = [("C1", PAY, utc("2026-11-20T02:00:00+00:00"), "e-1", 99.5, 2, None),
            ("C2", VIEW, utc("2026-11-20T16:00:00+00:00"), None, None, None, True)]


def stored_by_user(events):
    return [(events.users.read(UID)[e["gio_id"] - 1][1], e["event"], e["time"], e["id"],
             e.get("amount"), e.get("quantity"), e.get("first"))
            for e in events.read("amount", "quantity", "first")]


def test_a_csv_file_loads_as_json_lines_do(events):
    report = events.csv(
        f"event,time,id,{UID},amount,quantity,first,page\n"
        f"{PAY},2026-11-20T10:00:00+08:00,e-1,C1,99.5,2,,\n"
        f"{VIEW},{ms('2026-11-20T16:00:00+00:00')},,C2,,,true,\"\"\n")
    assert (report.applied, report.appended, report.users_created) == (True, 2, 2)
    events.users.load({"identifications": {UID: "C1"}}, {"identifications": {UID: "C2"}})
    assert stored_by_user(events) == EXPECTED


def test_a_parquet_file_with_native_types_loads_as_json_lines_do(events):
    table = pa.table({
        "event": [PAY, VIEW], "time": pa.array([ms("2026-11-20T10:00:00+08:00"),
                                                ms("2026-11-20T16:00:00+00:00")], pa.int64()),
        "id": ["e-1", None], UID: [["C1"], ["C2"]],
        "amount": pa.array([99.5, None]), "quantity": pa.array([2, None], pa.int64()),
        "first": pa.array([None, True])})
    report = events.parquet(table)
    assert (report.applied, report.appended, report.users_created) == (True, 2, 2)
    events.users.load({"identifications": {UID: "C1"}}, {"identifications": {UID: "C2"}})
    assert stored_by_user(events) == EXPECTED


def test_a_parquet_file_changed_while_it_loads_loads_nothing(events, engine, monkeypatch):
    """Staging reads a Parquet file more than once (a view of it): if the file is
    rewritten meanwhile, the load refuses it rather than apply rows no check saw."""
    path = events.path("parquet")
    rows = {"event": [PAY, PAY], "time": [ms("2026-11-20T10:00:00+08:00")] * 2,
            UID: ["C001", "C002"], "amount": [1.5, 2.5]}
    pq.write_table(pa.table(rows), path)
    module = ("tagport.engines.duckdb.events" if engine.name == "duckdb"
              else "tagport.engines.spark.event_load")
    checked = importlib.import_module(module).mark_duplicates

    def rewritten_meanwhile(*args, **kw):
        found = checked(*args, **kw)
        pq.write_table(pa.table({**rows, "amount": [1.5, -7.0]}), path)
        return found

    monkeypatch.setattr(f"{module}.mark_duplicates", rewritten_meanwhile)
    with pytest.raises(InvalidInput, match="the file changed while it was loaded, so nothing"
                                           " was loaded: load it again once it is whole"):
        events.file(path, InputFormat.PARQUET)
    assert events.read() == []
    monkeypatch.undo()
    assert events.file(path, InputFormat.PARQUET).appended == 2
    assert [e["amount"] for e in events.read("amount")] == [1.5, -7.0]


def test_json_lines_load_every_attribute_type(events):
    report = events.load(pay(ids={UID: "C1"}, id="e-1", amount=99.5, quantity=2),
                         {"event": VIEW, "time": ms("2026-11-20T16:00:00+00:00"),
                          "identifications": {UID: "C2"},
                          "attributes": {"first": True, "page": "", "since": "2026-01-02",
                                         "seen": "2026-11-20T10:00:00+08:00"}})
    assert report.appended == 2
    events.users.load({"identifications": {UID: "C1"}}, {"identifications": {UID: "C2"}})
    assert stored_by_user(events) == EXPECTED
    [_, view] = events.read("page", "since", "seen")
    assert (view["page"], view["since"], view["seen"]) == (
        "", date(2026, 1, 2), datetime(2026, 11, 20, 2, 0))


# --- a user's recent events (the console's user lookup) -----------------------------------


def test_recent_events_are_the_users_newest_first_with_their_attributes(events, engine):
    assert engine.recent_events(1, 10) == []  # nothing stored yet
    same = "2026-11-20T10:00:00+08:00"
    events.load(pay(time="2026-11-19T09:00:00+08:00", id="a", amount=5.0),
                pay(time=same, id="b", amount=7.5, category="书"),
                pay(time=same, ids={UID: "C002"}, id="other"),
                {"event": VIEW, "time": "2026-11-21T08:30:00+08:00", "id": "c",
                 "identifications": {UID: "C001"}, "attributes": {"page": "/home"}})
    events.load(pay(time=same, id="d"))  # loaded later at the same time: the newer of the two
    c001 = events.users.gio_id_of(UID, "C001")
    found = engine.recent_events(c001, 10)
    assert [(e["id"], e["event"], e["time"], e["dt"], e["attributes"]) for e in found] == [
        ("c", VIEW, utc("2026-11-21T08:30:00+08:00"), date(2026, 11, 21), {"page": "/home"}),
        ("d", PAY, utc(same), date(2026, 11, 20), {}),
        ("b", PAY, utc(same), date(2026, 11, 20), {"amount": 7.5, "category": "书"}),
        ("a", PAY, utc("2026-11-19T09:00:00+08:00"), date(2026, 11, 19), {"amount": 5.0})]
    assert found[1]["seq"] > found[2]["seq"]
    assert [e["id"] for e in engine.recent_events(c001, 2)] == ["c", "d"]
    assert engine.recent_events(999, 10) == []
