"""The web console in a real headless Chromium (Debian's `chromium`, driven by Playwright)
against the real `tagport serve`: sign in, see the tags, export, follow the job, download.

Set TAGPORT_CONSOLE_SCREENSHOTS=DIR to write the screenshots of docs/console.md there.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tagport.config import Settings
from tagport.core import Tagport
from tagport.exports.spec import ExportRequest
from tests.acceptance.browser import chromium, needs_chromium, playwright_api, screenshot, sign_in
from tests.acceptance.processes import serving
from tests.acceptance.test_cli_and_server import tagport
from tests.conftest import SEED_CATALOG, SEED_USERS, write_jsonl

pytestmark = needs_chromium
expect = playwright_api().expect

JOB_TIMEOUT_MS = 30_000


def cancelled_job(data: Path, token: str) -> str:
    """A job of `token` that ended in ERROR (cancelled before any worker ran it)."""
    core = Tagport(Settings(data_dir=data))
    try:
        owner = core.tokens.authenticate(token)
        job = core.jobs.submit(ExportRequest("tag_rfm", ["usr_age"], "json", "key"),
                               token_id=owner.id)
        core.jobs.cancel(job.id)
        return job.id
    finally:
        core.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`tagport serve` on the seed data; yields (url, token, id of a failed job)."""
    tmp = tmp_path_factory.mktemp("console")
    data = tmp / "data"
    catalog = tmp / "catalog.json"
    catalog.write_text(json.dumps(SEED_CATALOG, ensure_ascii=False), encoding="utf-8")
    tagport(data, "catalog", "apply", str(catalog))
    tagport(data, "load", str(write_jsonl(tmp / "users.jsonl", SEED_USERS)))
    token = tagport(data, "token", "create", "console").stdout.strip().splitlines()[-1]
    failed = cancelled_job(data, token)
    with serving(data, tmp / "server.log") as url:
        yield url, token, failed


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, served):
    context = browser.new_context(accept_downloads=True, base_url=served[0],
                                  viewport={"width": 1200, "height": 760})
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.requested_urls = urls  # type: ignore[attr-defined]
    yield page
    context.close()


def test_a_wrong_token_shows_an_error_and_stays_signed_out(page, served):
    sign_in(page, str(uuid.uuid4()))
    expect(page.get_by_role("alert").first).to_contain_text("This token is not valid")
    expect(page.get_by_role("alert").first).to_contain_text("INVALID_TOKEN")
    expect(page.get_by_label("API token")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("heading", name="User tags")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('tagport.token')") is None


def test_sign_in_export_follow_the_job_and_download_the_file(page, served):
    url, token, failed_job = served
    page.goto("/console")
    screenshot(page, "sign-in")
    sign_in(page, token)

    # the tags with their coverage, Chinese display names as text
    tags = page.get_by_role("table", name="User tags and their coverage")
    rfm = tags.get_by_role("row").filter(has_text="tag_rfm")
    expect(rfm).to_contain_text("会员等级")
    expect(rfm.get_by_role("cell").nth(2)).to_have_text("3")
    expect(rfm.get_by_role("cell").nth(3)).to_have_text("60%")
    expect(tags.get_by_role("row").filter(has_text="tag_interests")).to_contain_text("STRING[]")
    screenshot(page, "tags")

    # the export dialog opens and closes from the keyboard, focus returning to its button
    export_button = page.get_by_role("button", name="Export 会员等级")
    export_button.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(export_button).to_be_focused()

    # search by display name, pick in order, header of names
    export_button.click()
    expect(dialog).to_contain_text("Export the users of 会员等级")
    expect(dialog.get_by_label("Search by name or key")).to_be_focused()
    dialog.get_by_label("Search by name or key").fill("性别")
    expect(dialog.get_by_role("checkbox")).to_have_count(1)
    dialog.get_by_role("checkbox", name="性别").check()
    dialog.get_by_label("Search by name or key").fill("用户")
    dialog.get_by_role("checkbox", name="用户ID").check()
    dialog.get_by_label("Search by name or key").fill("")
    expect(dialog.get_by_role("checkbox")).to_have_count(5)
    expect(dialog.locator("#picked li")).to_have_text(
        ["性别 usr_gender Remove", "用户ID id_$basic_userId Remove"])
    expect(dialog).to_contain_text("2 of 60 picked")
    dialog.get_by_role("radio", name="Display names").check()
    screenshot(page, "export-dialog")
    dialog.get_by_role("button", name="Start export").click()
    expect(dialog).to_be_hidden()

    # the job appears and is polled to FINISH without a reload
    jobs = page.locator("#jobs tbody tr")
    expect(jobs).to_have_count(2)
    new_job = jobs.first
    expect(new_job.locator(".stage")).to_have_text("FINISH", timeout=JOB_TIMEOUT_MS)
    expect(new_job.get_by_role("cell").nth(2)).to_have_text("3")  # rows
    expect(page.get_by_role("status")).to_contain_text("finished: 3 rows")
    failed = page.locator(f'#jobs tr[data-job="{failed_job}"]')
    expect(failed.locator(".stage")).to_have_text("ERROR")
    expect(failed).to_contain_text("CANCELLED: cancelled by the client")
    expect(new_job).to_contain_text("_UserList.csv")
    expect(page.get_by_role("button", name="Show older jobs")).to_be_hidden()
    screenshot(page, "jobs")

    with page.expect_download() as downloading:
        new_job.get_by_role("link", name="Download").click()
    download = downloading.value
    assert download.suggested_filename.startswith("会员等级_")
    assert download.suggested_filename.endswith("_UserList.csv")
    content = Path(download.path()).read_bytes()
    expect(new_job.get_by_role("cell").nth(3)).to_have_text(f"{len(content)} B")
    lines = content.decode("utf-8").splitlines()
    assert lines[0] == '"gio_id","性别","用户ID"'
    assert lines[1:] == ['1,"男","C001"', '3,"女","C004||C005"', '4,,"C006"']

    # a signed link that has expired is swapped for a fresh one before it is followed
    link = new_job.get_by_role("link", name="Download")
    link.evaluate("a => { a.href = a.href.replace(/expires=\\d+/, 'expires=1'); }")
    with page.expect_download() as downloading:
        link.click()
    assert Path(downloading.value.path()).read_bytes() == content

    # the token went only in headers: never in a URL, the download's included
    assert any("signature=" in u for u in page.requested_urls)
    assert not [u for u in page.requested_urls if token in u]
    assert all(u.startswith(url + "/") for u in page.requested_urls)  # nothing from elsewhere

    # the session survives a reload of the tab; signing out forgets the token
    page.reload()
    expect(page.get_by_role("heading", name="Export jobs")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('tagport.token')") is None


def test_export_for_excel_gzipped_and_parquet_from_the_dialog(page, served):
    import gzip

    _, token, _ = served
    page.goto("/console")
    sign_in(page, token)
    dialog = page.get_by_role("dialog")
    page.get_by_role("button", name="Export 会员等级").click()
    dialog.get_by_label("Search by name or key").fill("性别")
    dialog.get_by_role("checkbox", name="性别").check()
    dialog.get_by_role("radio", name="Parquet").check()
    expect(dialog.get_by_role("radio", name="For Excel (UTF-8 with BOM)")).to_be_disabled()
    expect(dialog.get_by_role("radio", name="gzip (.gz)")).to_be_disabled()
    dialog.get_by_role("radio", name="CSV").check()
    dialog.get_by_role("radio", name="For Excel (UTF-8 with BOM)").check()
    dialog.get_by_role("radio", name="gzip (.gz)").check()
    dialog.get_by_role("button", name="Start export").click()
    job = page.locator("#jobs tbody tr").first
    expect(job.locator(".stage")).to_have_text("FINISH", timeout=JOB_TIMEOUT_MS)
    expect(job).to_contain_text("CSV · gzip · UTF-8-BOM")
    with page.expect_download() as downloading:
        job.get_by_role("link", name="Download").click()
    assert downloading.value.suggested_filename.endswith("_UserList.csv.gz")
    content = gzip.decompress(Path(downloading.value.path()).read_bytes())
    assert content.decode("utf-8").splitlines() == [
        '\ufeff"gio_id","usr_gender"', '1,"男"', '3,"女"', '4,']
