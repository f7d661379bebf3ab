"""Accessibility: axe-core on every page, keyboard use, and no sideways scrolling on a phone.

Set `COLLOQUE_E2E_SCREENSHOTS=/some/dir` to also save a full-page screenshot of each page checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from .helpers import (
    ALICE,
    BOB,
    CHLOE,
    DESKTOP,
    DR_MARTIN,
    DR_PETIT,
    EXTRA_PATIENT,
    PASSWORD,
    PHONE,
    SECRETARIAT,
    log_in,
    require_browser,
    screenshot,
    scroll_width,
    thread_id_by_subject,
)

# Before Playwright is imported: without it this module is skipped (or fails on CI).
require_browser()

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import BrowserContext, Page, expect  # noqa: E402

pytestmark = pytest.mark.e2e

BLOCKING_IMPACTS = {"serious", "critical"}
OPEN_THREAD = "Renouvellement de mon traitement pour la tension"
PENDING_THREAD = "Certificat pour la piscine"
CLOSED_THREAD = "Résultats de prise de sang"
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}

_axe = Axe()


def _report(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']} "
            f"[{violation['helpUrl']}]"
        )
        for node in violation["nodes"]:
            lines.append(f"    {', '.join(map(str, node['target']))}: {node['html'][:200]}")
            summary = node.get("failureSummary")
            if summary:
                lines.extend(f"      {line}" for line in summary.splitlines())
    return "\n".join(lines)


class PageChecker:
    """Runs axe on each page visited and collects what blocks, to report every page at once."""

    def __init__(self, viewport: str) -> None:
        self.viewport = viewport
        self.failures: list[str] = []
        self.checked: list[str] = []

    def check(self, page: Page, name: str) -> None:
        page.wait_for_load_state("load")
        self.checked.append(name)
        violations = _axe.run(page).response["violations"]
        blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
        if violations:
            print(f"\n[{self.viewport}] {name} ({page.url}):\n{_report(violations)}")
        if blocking:
            self.failures.append(f"[{self.viewport}] {name} ({page.url}):\n{_report(blocking)}")
        width = page.viewport_size["width"] if page.viewport_size else 0
        if scroll_width(page) > width:
            self.failures.append(
                f"[{self.viewport}] {name} ({page.url}): scrolls sideways, "
                f"{scroll_width(page)} px wide in a {width} px viewport"
            )
        screenshot(page, f"{self.viewport} {name}")

    def assert_clean(self) -> None:
        assert self.checked
        assert not self.failures, "Accessibility problems:\n\n" + "\n\n".join(self.failures)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_page_passes_axe(
    viewport: str, new_context: Callable[..., BrowserContext], live_server: str
) -> None:
    checker = PageChecker(viewport)
    options = VIEWPORTS[viewport]

    anonymous = new_context(**options).new_page()
    anonymous.goto("/login")
    checker.check(anonymous, "login")
    anonymous.fill("#email", ALICE)
    anonymous.fill("#password", "not the password")
    with anonymous.expect_navigation():
        anonymous.click("main form[action='/login'] button[type='submit']")
    expect(anonymous.locator("main .error")).to_be_visible()
    checker.check(anonymous, "login failed")
    response = anonymous.goto("/no-such-page")
    assert response is not None and response.status == 404
    checker.check(anonymous, "not found, logged out")

    alice = log_in(new_context(**options), ALICE)
    checker.check(alice, "patient home")
    open_id = thread_id_by_subject(alice, OPEN_THREAD)
    pending_id = thread_id_by_subject(alice, PENDING_THREAD)
    alice.goto("/threads/new")
    checker.check(alice, "new request")
    alice.goto(f"/threads/{open_id}")
    expect(alice.locator("#thread-title")).to_have_text(OPEN_THREAD)
    checker.check(alice, "thread, patient")
    response = alice.goto("/threads/999999")
    assert response is not None and response.status == 404
    checker.check(alice, "not found, patient")

    bob = log_in(new_context(**options), BOB)
    checker.check(bob, "patient home, nobody to write to")
    closed_id = thread_id_by_subject(bob, CLOSED_THREAD)
    bob.goto("/threads/new")
    checker.check(bob, "new request, nobody to write to")
    bob.goto(f"/threads/{closed_id}")
    checker.check(bob, "closed thread, patient")

    martin = log_in(new_context(**options), DR_MARTIN)
    checker.check(martin, "inbox")
    martin.goto(f"/inbox?thread={open_id}")
    expect(martin.locator("#thread-pane #thread-title")).to_have_text(OPEN_THREAD)
    checker.check(martin, "inbox, thread selected")
    martin.goto(f"/threads/{open_id}")
    checker.check(martin, "thread, practitioner")
    martin.goto(f"/threads/{pending_id}")
    expect(martin.locator(f"form[action='/threads/{pending_id}/accept']")).to_be_visible()
    checker.check(martin, "pending thread, practitioner")
    martin.goto("/settings")
    checker.check(martin, "settings")
    with martin.expect_navigation():
        martin.click("main form[action='/settings'] button[type='submit']")
    expect(martin).to_have_url(re.compile(r"/settings\?saved"))
    checker.check(martin, "settings saved")

    secretary = log_in(new_context(**options), SECRETARIAT)
    expect(secretary).to_have_url(re.compile(r"/queue$"))
    checker.check(secretary, "queue")
    secretary.goto(f"/threads/{pending_id}")
    checker.check(secretary, "pending thread, secretary")

    checker.assert_clean()


def test_decisions_and_errors_pass_axe(login: Callable[..., Page]) -> None:
    """A declined request, and an error shown by htmx in the message form."""
    checker = PageChecker("phone")
    chloe = login(CHLOE)
    petit_card = chloe.locator("[data-practitioner-id]", has_text="Petit")
    petit_card.locator("a[href^='/threads/new']").click()
    chloe.select_option("#category", "renewal")
    chloe.fill("#subject", "Renouvellement de pilule")
    chloe.fill("#body", "Bonjour, ma plaquette se termine dans dix jours.")
    with chloe.expect_navigation():
        chloe.click("form[action='/threads'] button[type='submit']")
    thread_id = chloe.url.rsplit("/", 1)[1]

    # The patient's message form, with an error swapped in by htmx (an empty message).
    chloe.evaluate("() => document.querySelector('#message-body').removeAttribute('required')")
    chloe.click("#thread form.message-form button[type='submit']")
    expect(chloe.locator("#message-error .error")).to_be_visible()
    checker.check(chloe, "message error, patient")

    petit = login(DR_PETIT)
    petit.goto(f"/inbox?thread={thread_id}")
    petit.fill(
        f"#decline-reason-{thread_id}", "Une consultation est nécessaire pour ce renouvellement."
    )
    petit.click(f"form[action='/threads/{thread_id}/decline'] button[type='submit']")
    expect(petit.locator("#thread .decline-reason")).to_be_visible()
    checker.check(petit, "declined thread, practitioner")

    chloe.reload()
    expect(chloe.locator("#thread .decline-reason")).to_be_visible()
    checker.check(chloe, "declined thread, patient")
    checker.assert_clean()


def _focused(page: Page) -> dict:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const box = el.getBoundingClientRect();
            const style = getComputedStyle(el);
            return {
                tag: el.tagName.toLowerCase(), id: el.id, cls: el.className,
                href: el.getAttribute("href"),
                visible: box.width > 0 && box.height > 0 && box.right > 0 && box.bottom > 0
                    && box.left < innerWidth && box.top < innerHeight,
                outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0,
            };
        }"""
    )


def test_login_with_the_keyboard_only(new_context: Callable[..., BrowserContext]) -> None:
    page = new_context(**PHONE).new_page()
    page.goto("/login")

    page.keyboard.press("Tab")
    first = _focused(page)
    assert first["cls"] == "skip-link" and first["href"] == "#main", first
    assert first["visible"], "the skip link must show when focused"
    assert first["outline"], "the focused skip link must have a visible focus outline"

    page.keyboard.press("Enter")
    assert _focused(page)["id"] == "main", "the skip link must move focus to the content"
    page.keyboard.press("Tab")
    assert _focused(page)["id"] == "email"
    page.keyboard.type(ALICE)
    page.keyboard.press("Tab")
    assert _focused(page)["id"] == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    submit = _focused(page)
    assert submit["tag"] == "button" and submit["outline"], submit
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("[data-practitioner-id]").first).to_be_visible()


def test_login_form_submits_with_enter(new_context: Callable[..., BrowserContext]) -> None:
    page = new_context(**PHONE).new_page()
    page.goto("/login")
    page.focus("#email")
    page.keyboard.type(DR_MARTIN)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/inbox"))


def test_long_words_wrap_instead_of_widening_the_page(
    new_context: Callable[..., BrowserContext],
) -> None:
    """A long unbroken word (a URL, a typo) in a subject or a message must wrap."""
    patient = log_in(new_context(**PHONE), EXTRA_PATIENT)
    martin_card = patient.locator("[data-practitioner-id]", has_text="Martin")
    martin_card.locator("a[href^='/threads/new']").click()
    patient.select_option("#category", "other")
    subject = "Lien-" + "x" * 145
    patient.fill("#subject", subject)
    patient.fill("#body", "https://example.org/" + "tres-long-chemin-" * 40)
    with patient.expect_navigation():
        patient.click("form[action='/threads'] button[type='submit']")
    expect(patient).to_have_url(re.compile(r"/threads/\d+$"))
    thread_id = patient.url.rsplit("/", 1)[1]
    assert scroll_width(patient) <= 360, "thread page, patient"
    patient.goto("/")
    assert scroll_width(patient) <= 360, "home page, patient"

    for name, options in VIEWPORTS.items():
        width = options["viewport"]["width"]
        martin = log_in(new_context(**options), DR_MARTIN)
        martin.goto(f"/inbox?thread={thread_id}")
        expect(martin.locator("#thread-pane #thread-title")).to_have_text(subject)
        assert scroll_width(martin) <= width, f"inbox, {name}"
        secretary = log_in(new_context(**options), SECRETARIAT)
        expect(secretary.locator("#queue-list")).to_contain_text(subject)
        assert scroll_width(secretary) <= width, f"queue, {name}"
