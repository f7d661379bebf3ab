"""Shared by the end-to-end tests: demo accounts, logging in, page checks."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "colloque-demo"
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}

ALICE = "alice@demo.colloque.test"
BOB = "bob@demo.colloque.test"
DR_MARTIN = "dr.martin@demo.colloque.test"
DR_BERNARD = "dr.bernard@demo.colloque.test"
SECRETARIAT = "secretariat@demo.colloque.test"
DR_PETIT = "dr.petit@autre.colloque.test"
CHLOE = "chloe@autre.colloque.test"
EXTRA_PATIENT = "patient-0001@demo.colloque.test"  # see LOAD_TEST_PATIENTS in conftest.py
SECOND_EXTRA_PATIENT = "patient-0002@demo.colloque.test"  # no conversation until test_live


def _unavailable(reason: str) -> NoReturn:
    """Skip on a machine without a browser, but never silently on CI."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"end-to-end tests cannot run on CI: {reason}", pytrace=False)
    pytest.skip(f"end-to-end tests skipped: {reason}", allow_module_level=True)


def require_browser() -> None:
    """Called by each test module before it imports Playwright, and by the browser fixture."""
    for module, package in (
        ("playwright", "playwright"),
        ("axe_playwright_python", "axe-playwright-python"),
    ):
        if importlib.util.find_spec(module) is None:
            _unavailable(f"the {package} Python package is missing (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (install Debian's chromium package)")


def log_in(context: BrowserContext, email: str, password: str = PASSWORD) -> Page:
    """A new page in `context`, logged in as `email`, sitting on that role's home page."""
    page = context.new_page()
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("main form[action='/login'] button[type='submit']")
    assert "/login" not in page.url, f"login as {email} failed"
    return page


def use_english(page: Page) -> None:
    """Switch the logged-in user's pages to English with the footer's language form."""
    if page.locator("html").get_attribute("lang") == "en":
        return
    page.select_option("#language-choice", "en")
    with page.expect_navigation():
        page.click(".site-footer form[action='/language'] button[type='submit']")
    assert page.locator("html").get_attribute("lang") == "en"


def practitioner_id(page: Page, name_part: str) -> str:
    """The id of the practitioner whose card on the patient's home page names `name_part`."""
    card = page.locator("[data-practitioner-id]", has_text=name_part)
    assert card.count() == 1, f"expected one card for {name_part!r}, found {card.count()}"
    value = card.get_attribute("data-practitioner-id")
    assert value and value.isdigit()
    return value


def thread_id_by_subject(page: Page, subject: str) -> str:
    """The id of the thread listed on the current page (home, inbox) with this subject."""
    row = page.locator("[data-thread-id]", has_text=subject)
    assert row.count() == 1, f"expected one row for {subject!r}, found {row.count()}"
    value = row.get_attribute("data-thread-id")
    assert value and value.isdigit()
    return value


def scroll_width(page: Page) -> int:
    """The document's full width in CSS pixels: more than the viewport means horizontal scroll."""
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot when COLLOQUE_E2E_SCREENSHOTS names a directory."""
    directory = os.environ.get("COLLOQUE_E2E_SCREENSHOTS")
    if not directory:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    page.screenshot(path=str(Path(directory) / f"{slug}.png"), full_page=True)


def browser_contexts(browser: Browser, base_url: str) -> Iterator[Callable[..., BrowserContext]]:
    """For a fixture: yields a maker of isolated contexts (one per person, a phone unless told
    otherwise) on `base_url`, and closes every one it made afterwards."""
    opened: list[BrowserContext] = []

    def open_context(**options: Any) -> BrowserContext:
        context = browser.new_context(base_url=base_url, **(options or PHONE))
        context.set_default_timeout(10_000)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        with contextlib.suppress(Exception):
            context.close()
