"""The console's tag page, user lookup and `/docs` in Debian's Chromium (Playwright) against
a real `tagport serve` on a small demo (`tagport demo --users 300`: the demo's catalog,
users, events and computed tags), with no network but loopback: every request to another
host is aborted and fails the test.

Set TAGPORT_CONSOLE_SCREENSHOTS=DIR to write the screenshots of docs/console.md there.
"""

from __future__ import annotations

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

UID, DEVICE = "$basic_userId", "$basic_deviceId"


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """`tagport serve` on a small demo; yields (url, token)."""
    tmp = tmp_path_factory.mktemp("console-demo")
    data = tmp / "data"
    tagport(data, "demo", "--users", "300", "--events", "6000", "--no-serve")
    token = tagport(data, "token", "create", "pages").stdout.strip().splitlines()[-1]
    with serving(data, tmp / "server.log") as url:
        yield url, token


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, demo):
    url, token = demo
    with loopback_page(browser, url, [token]) as page:
        yield page


def api(demo, path: str, language: str = "CH"):
    url, token = demo
    response = httpx.get(url + path, headers={"Authorization": f"Bearer {token}",
                                              "language": language}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def chart_of(page) -> dict:
    """The labels and bar heights the Chart.js chart of the tag page draws."""
    return page.evaluate("""() => {
        const chart = Chart.getChart(document.getElementById('distribution-chart'));
        return {labels: chart.data.labels, data: chart.data.datasets[0].data,
                type: chart.config.type, horizontal: chart.options.indexAxis === 'y'};
    }""")


def percent(ratio: float) -> str:
    text = f"{ratio * 100:.1f}".removesuffix(".0")
    return f"{text}%"


def test_docs_is_the_openapi_browser_from_the_package_with_no_network(page, demo):
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("tagport")
    expect(page.locator(".opblock-summary-path", has_text="/v1/api/user_events/{user_key}/{value}")
           ).to_be_visible()
    assert any(u.endswith("/console/static/vendor/swagger-ui/swagger-ui-bundle.js")
               for u in page.requested_urls)
    screenshot(page, "docs")


def test_a_tags_page_shows_its_definition_state_and_distribution(page, demo):
    url, token = demo
    sign_in(page, token)
    tags = page.get_by_role("table", name="User tags and their coverage")
    paid = tags.get_by_role("row").filter(has=page.get_by_text("tag_paid_30d", exact=True))
    expect(paid).to_contain_text("AGGREGATED")

    # a computed number tag: its definition in words and a histogram of the route's bins
    tags.get_by_role("button", name="近30天支付次数: details and distribution").click()
    detail = page.locator("#tag-detail")
    expect(page.get_by_role("heading", name="近30天支付次数")).to_be_focused()
    expect(detail.locator("#tag-type")).to_have_text("AGGREGATED")
    expect(detail.locator("#tag-definition")).to_have_text("过去30天 支付订单 次数")
    expect(detail.locator("#tag-state")).to_contain_text("FINISH")
    expect(detail.locator("#tag-scheduler")).to_contain_text("DAILY")
    expect(detail.get_by_role("button", name="Compute now")).to_be_visible()
    found = api(demo, "/v1/api/user_tags/tag_paid_30d/distribution")
    assert found["bins"] and not found["values"]
    rows = detail.locator("#distribution-table tbody tr")
    expect(rows).to_have_count(len(found["bins"]))
    expect(rows.locator("td:nth-of-type(1)")).to_have_text([str(b["users"]) for b in found["bins"]])
    expect(rows.locator("td:nth-of-type(2)")).to_have_text([percent(b["ratio"]) for b in found["bins"]])
    drawn = chart_of(page)
    assert drawn["data"] == [b["users"] for b in found["bins"]]
    assert drawn["type"] == "bar" and not drawn["horizontal"]  # a histogram
    expect(detail.locator("#distribution-summary")).to_contain_text(
        f"{found['coveredUsers']} of {found['totalUsers']} users have a value")
    screenshot(page, "tag-histogram")

    # a loaded string tag: its most common values as bars, with their share of all users
    tags.get_by_role("button", name="会员等级: details and distribution").click()
    expect(detail.locator("#tag-type")).to_contain_text("IMPORT")
    expect(detail.get_by_role("button", name="Compute now")).to_be_hidden()
    found = api(demo, "/v1/api/user_tags/tag_rfm/distribution")
    assert [v["value"] for v in found["values"]] and not found["bins"]
    expect(rows.locator("th")).to_have_text([v["value"] for v in found["values"]])
    expect(rows.locator("td:nth-of-type(2)")).to_have_text([percent(v["ratio"]) for v in found["values"]])
    drawn = chart_of(page)
    assert drawn["labels"] == [v["value"] for v in found["values"]]
    assert drawn["data"] == [v["users"] for v in found["values"]]
    assert drawn["horizontal"]
    screenshot(page, "tag-values")

    # English: the definition in words follows the display-name language
    tags.get_by_role("button", name="近30天支付次数: details and distribution").click()
    page.locator("#language").select_option("US")
    expect(page.get_by_role("heading", name="Orders paid (30d)")).to_be_visible()
    expect(detail.locator("#tag-definition")).to_have_text("Last 30 days · Order paid · count")
    english = api(demo, "/v1/api/user_tags/tag_value_tier", "US")["definition"]
    assert english.startswith("高价值 when Last 30 days · Order paid · sum of Amount >= 2000;")
    tags.get_by_role("button", name="Value tier: details and distribution").click()
    expect(detail.locator("#tag-definition")).to_have_text(english)


def test_a_tag_opened_while_the_workspace_still_loads_keeps_the_focus(page, demo):
    # hold the jobs list back, so the workspace is still loading when the tag is opened
    held = []
    page.route("**/v1/api/jobs?*", lambda route: held.append(route))
    _, token = demo
    sign_in(page, token)
    workspace = page.locator("#workspace")
    expect(workspace).to_have_attribute("aria-busy", "true")
    page.get_by_role("button", name="近30天支付次数: details and distribution").click()
    heading = page.get_by_role("heading", name="近30天支付次数")
    expect(heading).to_be_focused()
    assert held, "the jobs list is being held back"

    for route in held:
        route.continue_()  # to the server (a loopback address)
    page.unroute("**/v1/api/jobs?*")
    expect(workspace).not_to_have_attribute("aria-busy", "true")
    expect(heading).to_be_focused()


def test_compute_now_follows_the_computation_and_a_409_is_said_plainly(page, demo):
    _, token = demo
    sign_in(page, token)
    page.get_by_role("button", name="最常浏览品类: details and distribution").click()
    detail = page.locator("#tag-detail")
    expect(detail.locator("#tag-definition")).to_have_text("过去90天 浏览商品 次数最多的 品类")
    before = api(demo, "/v1/api/user_tags/tag_top_category")["detector"]["detectedAt"]
    page.get_by_role("button", name="Compute now").focus()
    page.keyboard.press("Enter")
    expect(detail.locator("#tag-compute-note")).to_contain_text("Computed:", timeout=30_000)
    after = api(demo, "/v1/api/user_tags/tag_top_category")["detector"]
    assert after["stage"] == "FINISH" and after["detectedAt"] != before
    expect(detail.locator("#tag-compute-note")).to_contain_text(
        f"Computed: {after['totalUsers']} users have a value.")
    expect(detail.locator("#tag-state")).to_contain_text("FINISH")

    # while another computation of the tag is queued the server answers 409: said plainly
    page.route("**/v1/api/user_tags/tag_top_category/computes", lambda route: route.fulfill(
        status=409, json={"code": "COMPUTE_IN_PROGRESS",
                          "message": "tag_top_category is being computed"}))
    page.get_by_role("button", name="Compute now").click()
    expect(detail.locator("#tag-compute-note")).to_have_text(
        "Already computing (COMPUTE_IN_PROGRESS): tag_top_category is being computed")
    expect(page.get_by_role("button", name="Compute now")).to_be_enabled()


def test_look_a_user_up_by_any_identity(page, demo):
    _, token = demo
    sign_in(page, token)
    page.get_by_role("button", name="User lookup").click()
    expect(page.get_by_label("Value", exact=True)).to_be_focused()
    user = api(demo, f"/v1/api/users/{UID}/U00000001")
    events = api(demo, f"/v1/api/user_events/{UID}/U00000001?limit=50")
    assert events["gioId"] == user["gioId"] and events["values"]

    # by the device: pick the identity and type a value, from the keyboard
    device = user["identifications"][f"ids_{DEVICE}"][0]
    page.get_by_label("Identity", exact=True).select_option(DEVICE)
    page.get_by_label("Value", exact=True).fill(device)
    page.get_by_label("Value", exact=True).press("Enter")
    result = page.locator("#user-result")
    expect(page.locator("#user-summary")).to_have_text(
        f"gio_id {user['gioId']}, found by {DEVICE} = {device}.")
    identities = result.locator("#user-identities dd")
    expect(identities).to_have_text([", ".join(v) for v in user["identifications"].values()])
    expect(result.locator("#user-identities dt").first).to_contain_text("登录用户ID")
    city = result.locator("#user-attributes dt", has_text="usr_city")
    expect(city).to_contain_text("城市")
    expect(result.locator("#user-attributes dd").nth(2)).to_have_text(
        user["properties"]["usr_city"] or "–")
    expect(result.locator("#user-tags")).to_contain_text("近30天支付次数")
    expect(result.locator("#user-segments")).to_be_visible()  # the place kept for segments

    # the timeline: the route's events, newest first, with their display names
    timeline = result.locator("#user-events li")
    expect(timeline).to_have_count(len(events["values"]))
    ids = [e["id"] for e in events["values"]]
    assert timeline.evaluate_all("items => items.map(i => i.dataset.event)") == ids
    first = events["values"][0]
    expect(timeline.first.locator("strong")).to_have_text(first["name"])
    expect(timeline.first).to_contain_text(
        " · ".join(f"{a['name']}: {a['value']}" for a in first["attributes"]))
    screenshot(page, "user-lookup")
    result.locator("#user-events-title").scroll_into_view_if_needed()
    screenshot(page, "user-events")

    # a value nobody holds says so
    page.get_by_label("Value", exact=True).fill("D-nobody")
    page.get_by_label("Value", exact=True).press("Enter")
    expect(page.locator("#user-error")).to_have_text(f"No user holds D-nobody for {DEVICE}.")
    expect(result).to_be_hidden()
