"""The console's segments in Debian's Chromium (Playwright) against a real `tagport serve` on
a small demo (`tagport demo --users 300`), with no network but loopback: every request to
another host is aborted and fails the test, and so does a URL holding a token.

Build "men who paid at least twice in the last 30 days and are not in Shanghai" with the
mouse and the keyboard, watching the estimate after each condition; save it, follow it to
FINISH, export and download it and compare the file with the API's own export; its 群体画像
against the portrait route; a member's user lookup lists it. Then editing, deleting (409
plainly), uploading a list, and what a token without the admin scope sees.

Set TAGPORT_CONSOLE_SCREENSHOTS=DIR to write the screenshots of docs/console.md there.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import httpx
import pytest

from tests.acceptance.browser import (
    chromium,
    loopback_page,
    needs_chromium,
    playwright_api,
    screenshot,
    sign_in,
)
from tests.acceptance.processes import serving
from tests.acceptance.test_cli_and_server import tagport

pytestmark = needs_chromium
expect = playwright_api().expect

UID = "$basic_userId"
TIMEOUT_MS = 30_000
GENDER = {"key": "usr_gender", "op": "=", "values": ["男"]}
PAID_TWICE = {"did": {"event": "payOrderSuccess", "measure": "count", "window": {"lastDays": 30}},
              "op": ">=", "values": [2]}
NOT_SHANGHAI = {"key": "usr_city", "op": "!=", "values": ["上海"]}


class Demo:
    """The served demo: its url, an admin token and an export-only token."""

    def __init__(self, url: str, admin: str, reader: str) -> None:
        self.url, self.admin, self.reader = url, admin, reader
        self.project = self.get("/v1/api/projects")["values"][0]["id"]

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin}", "language": "CH"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def get(self, path: str):
        response = self.call("GET", path)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body, status: int = 200):
        response = self.call("POST", path, json=body)
        assert response.status_code == status, response.text
        return response.json()

    def segments(self, rest: str = "") -> str:
        return f"/v1/api/projects/{self.project}/segment_profiles{rest}"

    def estimate(self, definition) -> int:
        found = self.post(f"/v1/api/projects/{self.project}/segment_estimates",
                          {"definition": definition})
        assert found["exact"]  # 300 users: counted exactly
        return found["users"]

    def wait_computed(self, key: str) -> dict:
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            segment = self.get(self.segments(f"/{key}"))
            if segment["detector"]["stage"] in ("FINISH", "ERROR") or time.monotonic() > deadline:
                assert segment["detector"]["stage"] == "FINISH", segment
                return segment
            time.sleep(0.2)

    def exported(self, key: str, body: dict) -> bytes:
        """The segment's export through the API, downloaded from its signed link."""
        job = self.post(self.segments(f"/{key}/export_jobs"), body)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            result = self.get(f"/v1/api/job/result/{job['id']}")
            if result["stage"] in ("FINISH", "ERROR") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert result["stage"] == "FINISH", result
        (link,) = result["downloadLinks"]
        return httpx.get(self.url + link, timeout=30).content


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`tagport serve` on a small demo."""
    tmp = tmp_path_factory.mktemp("console-segments")
    data = tmp / "data"
    tagport(data, "demo", "--users", "300", "--events", "6000", "--no-serve")
    admin = tagport(data, "token", "create", "marketer", "--scope", "admin").stdout.strip().splitlines()[-1]
    reader = tagport(data, "token", "create", "reader").stdout.strip().splitlines()[-1]
    with serving(data, tmp / "server.log") as url:
        yield Demo(url, admin, reader)


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, demo):
    with loopback_page(browser, demo.url, [demo.admin, demo.reader]) as page:
        page.on("dialog", lambda dialog: dialog.accept())  # "Delete …?": yes
        yield page


def percent(ratio: float) -> str:
    text = f"{ratio * 100:.1f}".removesuffix(".0")
    return f"{text}%"


def open_segments(page, token: str) -> None:
    sign_in(page, token)
    page.get_by_role("button", name="Segments and 群体画像").click()
    expect(page.get_by_role("heading", name="Segments", exact=True)).to_be_focused()


def test_build_save_export_portray_and_look_up_a_segment(page, demo):
    open_segments(page, demo.admin)
    builder = page.locator("#builder")
    estimate = page.locator("#estimate")
    page.get_by_role("button", name="New segment").click()
    expect(page.get_by_role("heading", name="New segment")).to_be_focused()
    expect(estimate).to_have_text("Estimated size: – (Add a condition to see the size.)")

    # 1. men: the property and the operator picked, the value typed from the keyboard
    builder.get_by_role("button", name="Add a condition", exact=True).click()
    expect(builder.get_by_label("Condition 1: property")).to_be_focused()
    builder.get_by_label("Condition 1: property").select_option("usr_gender")
    expect(builder.get_by_label("Condition 1: operator")).to_have_value("=")
    expect(estimate).to_contain_text("Condition 1: enter a value.")
    # the value picker offers the attribute's most common values
    common = demo.get("/v1/api/catalog/usr_gender/distribution?top=50")["values"]
    picks = builder.locator("#c-1-picks0 option")
    expect(picks).to_have_count(len(common))
    assert picks.evaluate_all("os => os.map(o => o.value)") == [v["value"] for v in common]
    builder.get_by_label("Condition 1: value").focus()
    page.keyboard.type("男")
    men = demo.estimate({"op": "and", "exprs": [GENDER]})
    expect(estimate).to_have_attribute("data-users", str(men))
    expect(estimate).to_have_text(f"Estimated size: {men} of 300 users ({percent(men / 300)}).")

    # 2. paid at least twice in the last 30 days: from the keyboard only
    builder.get_by_role("button", name="Add an event done").focus()
    page.keyboard.press("Enter")
    expect(builder.get_by_label("Condition 2: did or did not")).to_be_focused()
    expect(builder.get_by_label("Condition 2: did or did not")).to_have_value("atLeast")
    page.keyboard.press("Tab")
    expect(builder.get_by_label("Condition 2: event")).to_be_focused()
    builder.get_by_label("Condition 2: event").select_option("payOrderSuccess")
    page.keyboard.press("Tab")
    expect(builder.get_by_label("Condition 2: times")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    expect(builder.get_by_label("Condition 2: days")).to_have_value("30")
    paid = demo.estimate({"op": "and", "exprs": [GENDER, PAID_TWICE]})
    assert paid != men
    expect(estimate).to_have_attribute("data-users", str(paid))

    # 3. not in Shanghai
    builder.get_by_role("button", name="Add a condition", exact=True).click()
    builder.get_by_label("Condition 3: property").select_option("usr_city")
    builder.get_by_label("Condition 3: operator").select_option("!=")
    builder.get_by_label("Condition 3: value").fill("上海")
    definition = {"op": "and", "exprs": [GENDER, PAID_TWICE, NOT_SHANGHAI]}
    size = demo.estimate(definition)
    expect(estimate).to_have_attribute("data-users", str(size))
    expect(estimate).to_have_text(f"Estimated size: {size} of 300 users ({percent(size / 300)}).")

    # save: a Chinese name, a typed key, from the keyboard
    builder.get_by_label("Name", exact=True).fill("付费两次的男性")
    builder.get_by_label("Key", exact=True).fill("seg_men_paid_twice")
    builder.get_by_label("Schedule").select_option("ONCE")
    screenshot(page, "segment-builder")
    builder.get_by_role("button", name="Save and compute").focus()
    page.keyboard.press("Enter")
    expect(builder).to_be_hidden()
    row = page.locator('#segments tr[data-segment="seg_men_paid_twice"]')
    expect(row.locator(".stage")).to_have_text("FINISH", timeout=TIMEOUT_MS)
    saved = demo.wait_computed("seg_men_paid_twice")
    assert saved["definition"] == definition and saved["scheduler"] == "ONCE"
    assert saved["detector"]["totalUsers"] == size
    expect(row.get_by_role("cell").nth(4)).to_have_text(str(size))  # Members
    expect(page.locator("#segments-note")).to_have_text(
        f"付费两次的男性 (seg_men_paid_twice) computed: {size} members.")
    screenshot(page, "segments")

    # export it as a tag is exported, download, and compare with the API's export
    row.get_by_role("button", name="Export 付费两次的男性").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Export the users of 付费两次的男性")
    expect(dialog).to_contain_text(f"Segment seg_men_paid_twice: {size} users.")
    for name in ("登录用户ID", "性别", "城市"):
        dialog.get_by_label("Search by name or key").fill(name)
        dialog.get_by_role("checkbox", name=name).check()
    dialog.get_by_role("button", name="Start export").click()
    job = page.locator("#jobs tbody tr").first
    expect(job.locator(".stage")).to_have_text("FINISH", timeout=TIMEOUT_MS)
    expect(job).to_contain_text("seg_men_paid_twice")
    with page.expect_download() as downloading:
        job.get_by_role("link", name="Download").click()
    download = downloading.value
    assert download.suggested_filename.startswith("付费两次的男性_")
    assert download.suggested_filename.endswith("_UserList.csv")
    content = Path(download.path()).read_bytes()
    expected = demo.exported("seg_men_paid_twice", {
        "properties": ["id_$basic_userId", "usr_gender", "usr_city"], "fileFormat": "csv",
        "csvHeaderType": "key", "charset": "UTF-8", "compression": "none"})
    lines = content.decode("utf-8").splitlines()
    assert lines[0] == '"gio_id","id_$basic_userId","usr_gender","usr_city"'
    assert lines[:6] == expected.decode("utf-8").splitlines()[:6]
    assert len(lines) == size + 1 and content == expected

    # 群体画像: the first three attributes are ticked; add a tag; compare with the route
    row.get_by_role("button", name="群体画像 of 付费两次的男性").click()
    portrait = page.locator("#portrait")
    expect(portrait.get_by_label("Group")).to_be_focused()
    expect(portrait.get_by_label("Group")).to_have_value("seg:seg_men_paid_twice")
    portrait.get_by_role("checkbox", name="会员等级").check()
    portrait.get_by_role("button", name="Show").click()
    keys = ["usr_gender", "usr_age", "usr_city", "tag_rfm"]
    found = demo.get(demo.segments(f"/seg_men_paid_twice/portrait?properties={','.join(keys)}"))
    items = portrait.locator(".portrait-item")
    expect(items).to_have_count(len(keys))
    assert items.evaluate_all("xs => xs.map(x => x.dataset.key)") == keys
    expect(portrait.locator("#portrait-summary")).to_have_text(
        f"付费两次的男性: {size} of 300 users ({percent(size / 300)}).")
    for i, prop in enumerate(found["properties"]):
        rows = prop["bins"] or prop["values"]
        table = items.nth(i).locator("tbody tr")
        expect(table).to_have_count(len(rows))
        expect(table.locator("td:nth-of-type(1)")).to_have_text([str(r["groupUsers"]) for r in rows])
        expect(table.locator("td:nth-of-type(2)")).to_have_text([percent(r["groupRatio"]) for r in rows])
        expect(table.locator("td:nth-of-type(4)")).to_have_text([percent(r["allRatio"]) for r in rows])
        if prop["values"]:
            expect(table.locator("th")).to_have_text([str(r["value"]) for r in rows])
        drawn = items.nth(i).locator("canvas").evaluate("""c => {
            const chart = Chart.getChart(c);
            return {labels: chart.data.labels, sets: chart.data.datasets.map(d => [d.label, d.data])};
        }""")
        assert drawn["sets"] == [["This group", [r["groupRatio"] * 100 for r in rows]],
                                 ["All users", [r["allRatio"] * 100 for r in rows]]]
    screenshot(page, "segment-portrait")
    with page.expect_download() as downloading:
        portrait.get_by_role("button", name="Download as CSV").click()
    assert downloading.value.suggested_filename == "付费两次的男性_群体画像.csv"
    table = list(csv.reader(io.StringIO(
        Path(downloading.value.path()).read_bytes().decode("utf-8-sig"))))
    assert table[0] == ["property", "name", "value", "group_users", "group_share", "all_users",
                        "all_share"]
    city = next(p for p in found["properties"] if p["key"] == "usr_city")
    assert [r for r in table if r[0] == "usr_city"] == [
        ["usr_city", "城市", v["value"], str(v["groupUsers"]), str(v["groupRatio"]),
         str(v["allUsers"]), str(v["allRatio"])] for v in city["values"]]
    assert len(table) == 1 + sum(len(p["bins"] or p["values"]) for p in found["properties"])

    # a member's user lookup lists the segment; someone else's says it has none
    member = demo.get(demo.segments("/seg_men_paid_twice/users?limit=1&properties=id_$basic_userId"))
    member_id = member["values"][0]["identifications"][f"id_{UID}"][0]
    page.get_by_role("button", name="User lookup").click()
    page.get_by_label("Value", exact=True).fill(member_id)
    page.get_by_label("Value", exact=True).press("Enter")
    segments = page.locator("#user-segments")
    expect(segments.locator("li")).to_have_text(["付费两次的男性 seg_men_paid_twice"])
    expect(segments).to_contain_text("Member of 1 segment of project 默认项目.")
    screenshot(page, "user-segments")
    listed = demo.get(f"/v1/api/projects/{demo.project}/user_segments/{UID}/{member_id}")
    assert [s["key"] for s in listed["values"]] == ["seg_men_paid_twice"]


def test_edit_loads_the_definition_back_and_a_segment_in_use_is_not_deleted(page, demo):
    base = {"op": "and", "exprs": [GENDER, PAID_TWICE, {
        "op": "not", "exprs": [{"key": "usr_city", "op": "=", "values": ["上海"]}]}]}
    demo.post(demo.segments(), {"key": "seg_edit_me", "name": "Edit me", "definition": base}, 201)
    demo.wait_computed("seg_edit_me")
    open_segments(page, demo.admin)
    row = page.locator('#segments tr[data-segment="seg_edit_me"]')
    row.get_by_role("button", name="Edit Edit me").click()
    builder = page.locator("#builder")
    expect(page.get_by_role("heading", name="Edit Edit me")).to_be_focused()
    expect(builder.get_by_label("Condition 1: property")).to_have_value("usr_gender")
    expect(builder.get_by_label("Condition 1: value")).to_have_value("男")
    expect(builder.get_by_label("Condition 2: event")).to_have_value("payOrderSuccess")
    expect(builder.get_by_label("Condition 2: times")).to_have_value("2")
    expect(builder.get_by_label("Group 3: match")).to_have_value("none")  # not(…) as a group
    expect(builder.get_by_label("Condition 3.1: value")).to_have_value("上海")
    expect(builder.get_by_label("Key", exact=True)).to_be_disabled()
    expect(page.locator("#estimate")).to_have_attribute("data-users", str(demo.estimate(base)))

    # at least 3 times; a nested group gets an "any of" of two cities
    builder.get_by_label("Condition 2: times").fill("3")
    changed = {"op": "and", "exprs": [GENDER, {**PAID_TWICE, "values": [3]}, base["exprs"][2]]}
    expect(page.locator("#estimate")).to_have_attribute("data-users", str(demo.estimate(changed)))
    builder.get_by_role("button", name="Save changes").click()
    expect(builder).to_be_hidden()
    saved = demo.wait_computed("seg_edit_me")
    assert saved["definition"] == changed
    expect(row.get_by_role("cell").nth(4)).to_have_text(str(saved["detector"]["totalUsers"]),
                                                       timeout=TIMEOUT_MS)

    # another segment made of this one: "Edit me" is then in use
    page.get_by_role("button", name="New segment").click()
    builder.get_by_role("button", name="Add a segment").click()
    builder.get_by_label("Condition 1: segment").select_option("seg_edit_me")
    builder.get_by_label("Condition 1: in or not in").select_option("not")
    not_in = {"op": "and", "exprs": [{"op": "not", "exprs": [{"segment": "seg_edit_me"}]}]}
    expect(page.locator("#estimate")).to_have_attribute("data-users", str(demo.estimate(not_in)))
    builder.get_by_label("Name", exact=True).fill("Everyone else")
    expect(builder.get_by_label("Key", exact=True)).to_have_value("seg_everyone_else")
    builder.get_by_role("button", name="Save and compute").click()
    other = page.locator('#segments tr[data-segment="seg_everyone_else"]')
    expect(other.locator(".stage")).to_have_text("FINISH", timeout=TIMEOUT_MS)

    row.get_by_role("button", name="Delete Edit me").click()
    expect(page.locator("#segments-error")).to_contain_text(
        "Edit me is not deleted: another segment's conditions name it (SEGMENT_IN_USE: ")
    expect(page.locator("#segments-error")).to_contain_text("seg_everyone_else")
    expect(row).to_be_visible()
    other.get_by_role("button", name="Delete Everyone else").click()
    expect(other).to_be_hidden()
    expect(page.locator("#segments-note")).to_have_text("Deleted Everyone else (seg_everyone_else).")
    row.get_by_role("button", name="Delete Edit me").click()
    expect(row).to_be_hidden()
    assert demo.call("GET", demo.segments("/seg_edit_me")).status_code == 404


def test_upload_a_list_of_identities_as_a_segment(page, demo):
    known = [demo.get(f"/v1/api/users/{UID}/U0000000{i}")["identifications"][f"ids_{UID}"][0]
             for i in (1, 2)]
    open_segments(page, demo.admin)
    page.get_by_role("button", name="Upload a list…").click()
    upload = page.locator("#upload")
    expect(upload.get_by_label("Name", exact=True)).to_be_focused()
    page.keyboard.type("VIP list")
    expect(upload.get_by_label("Key", exact=True)).to_have_value("seg_vip_list")
    body = f"id_{UID}\n{known[0]}\n{known[1]}\nnobody-at-all\n".encode()
    upload.get_by_label("CSV file").set_input_files(
        {"name": "vip.csv", "mimeType": "text/csv", "buffer": body})
    upload.get_by_role("button", name="Upload").click()
    expect(upload.locator("#upload-result")).to_have_text(
        "3 values read: 2 members, 1 unknown (no user holds them).")
    row = page.locator('#segments tr[data-segment="seg_vip_list"]')
    expect(row).to_contain_text("uploaded list")
    expect(row.get_by_role("cell").nth(4)).to_have_text("2")
    members = demo.get(demo.segments("/seg_vip_list/users?properties=id_$basic_userId"))
    assert sorted(u["identifications"][f"id_{UID}"][0] for u in members["values"]) == sorted(known)
    screenshot(page, "segment-upload")


def test_a_token_without_admin_sees_segments_and_is_told_saving_needs_admin(page, demo):
    demo.post(demo.segments(), {"key": "seg_for_readers", "name": "For readers",
                                "definition": GENDER}, 201)
    demo.wait_computed("seg_for_readers")
    open_segments(page, demo.reader)
    row = page.locator('#segments tr[data-segment="seg_for_readers"]')
    expect(row.locator(".stage")).to_have_text("FINISH")
    expect(page.locator("#segments-admin")).to_contain_text("need a token with the admin scope")
    expect(row.get_by_role("button", name="Delete For readers")).to_be_disabled()
    row.get_by_role("button", name="Edit For readers").click()
    builder = page.locator("#builder")
    expect(builder).to_contain_text("Saving needs an admin token.")
    expect(builder.get_by_role("button", name="Save changes")).to_be_disabled()
    # estimating needs no admin scope
    expect(page.locator("#estimate")).to_have_attribute(
        "data-users", str(demo.estimate({"op": "and", "exprs": [GENDER]})))
