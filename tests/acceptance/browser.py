"""Debian's Chromium driven by Playwright, for the console's tests: the launch, a page whose
requests may reach only loopback, screenshots and signing in.

Set TAGPORT_CONSOLE_SCREENSHOTS=DIR to write the screenshots of docs/console.md there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# as the machine notes say: no sandbox (root), no background traffic to Google's hosts
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SCREENSHOTS = os.environ.get("TAGPORT_CONSOLE_SCREENSHOTS")
LOOPBACK = {"127.0.0.1", "localhost"}

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the console's browser tests need Debian's chromium (apt-get install chromium)")


def playwright_api() -> Any:
    return pytest.importorskip(
        "playwright.sync_api",
        reason="the console's browser tests need playwright (the test extra)")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright gives each launch a new, empty --user-data-dir)."""
    with playwright_api().sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@contextmanager
def loopback_page(browser: Any, url: str, secrets: list[str]) -> Iterator[Any]:
    """A page at 1280×800 on `url` whose requests may reach only loopback: any other is
    aborted, and so is the test after it; a URL holding one of `secrets` fails it too."""
    context = browser.new_context(accept_downloads=True, base_url=url,
                                  viewport={"width": 1280, "height": 800})
    elsewhere: list[str] = []
    requested: list[str] = []

    def gate(route: Any) -> None:
        requested.append(route.request.url)
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", gate)
    page = context.new_page()
    page.requested_urls = requested
    yield page
    context.close()
    assert not elsewhere, f"requests left the machine: {elsewhere}"
    assert not [u for u in requested if any(s in u for s in secrets)], "a token in a URL"


def screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def sign_in(page: Any, token: str) -> None:
    page.goto("/console")
    page.get_by_label("API token").fill(token)
    page.get_by_label("API token").press("Enter")  # the keyboard is enough
