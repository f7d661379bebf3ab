"""Emergency wording as the patient and the practice see it in the browser: the numbers to call
while still typing, a send that is never blocked, then the guidance and the alert live."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .helpers import (
    ALICE,
    DESKTOP,
    DR_MARTIN,
    EXTRA_PATIENT,
    PHONE,
    log_in,
    practitioner_id,
    require_browser,
    thread_id_by_subject,
)

# Before Playwright is imported: without it this module is skipped (or fails on CI).
require_browser()

from playwright.sync_api import BrowserContext, Page, expect  # noqa: E402

pytestmark = pytest.mark.e2e

OPEN_THREAD = "Renouvellement de mon traitement pour la tension"
CARDIAC = (
    "J'ai une douleur dans la poitrine qui serre et mon bras gauche est engourdi depuis 20 minutes"
)
SUICIDAL = "Je veux mourir, j'ai envie d'en finir ce soir"
BENIGN = "Bonjour, pouvez-vous renouveler mon ordonnance de Doliprane ?"
# The preview waits for 600 ms without typing, then asks the server.
PREVIEW_MS = 5_000
LIVE_MS = 10_000


def expect_up_to_date(page: Page) -> None:
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "live", timeout=LIVE_MS)


def mark_page(page: Page) -> None:
    page.evaluate("() => { window.__e2eTriageSamePage = true; }")


def assert_not_reloaded(page: Page, name: str) -> None:
    assert page.evaluate("() => window.__e2eTriageSamePage === true"), f"{name} was reloaded"


def test_the_banner_shows_while_typing_and_the_alert_arrives_live_once_sent(
    new_context: Callable[..., BrowserContext],
) -> None:
    alice = log_in(new_context(**PHONE), ALICE)
    thread_id = thread_id_by_subject(alice, OPEN_THREAD)
    martin = log_in(new_context(**DESKTOP), DR_MARTIN)
    expect_up_to_date(martin)
    martin.goto("/inbox")
    alice.goto(f"/threads/{thread_id}")
    for page in (alice, martin):
        expect_up_to_date(page)
        mark_page(page)

    draft = alice.locator("#draft-guidance")
    sent = alice.locator("#emergency-guidance")
    alert = martin.locator(f'.emergency-alert[data-emergency-thread-id="{thread_id}"]')
    expect(draft).to_be_empty()
    expect(sent.locator(".emergency-guidance")).to_have_count(0)

    # Typing, not sending: the numbers to call appear under the box.
    box = alice.locator("#message-body")
    box.press_sequentially(CARDIAC, delay=5)
    expect(draft.locator('a[href="tel:15"]')).to_be_visible(timeout=PREVIEW_MS)
    expect(draft.locator('a[href="tel:112"]')).to_be_visible()
    expect(draft.locator('a[href="tel:3114"]')).to_have_count(0)
    expect(draft.locator('[role="alert"]')).to_have_count(1)
    # Nothing was sent: the practice sees no alert for a draft.
    martin.wait_for_timeout(1_000)
    expect(alert).to_have_count(0)

    # Sending is not blocked: the message goes out, the page stays, the guidance comes live.
    alice.locator(f"#thread-controls-{thread_id} button[type='submit']").click()
    expect(alice.locator("[data-message-id]", has_text="bras gauche est engourdi")).to_have_count(
        1, timeout=LIVE_MS
    )
    expect(sent.locator('a[href="tel:15"]')).to_be_visible(timeout=LIVE_MS)
    expect(sent.locator('a[href="tel:112"]')).to_be_visible()
    expect(sent.locator('a[href="tel:3114"]')).to_have_count(0)

    # Dr Martin's inbox shows the emergency, live, once.
    expect(alert).to_have_count(1, timeout=LIVE_MS)
    expect(alert).to_be_visible()
    expect(martin.locator(f'[data-thread-id="{thread_id}"] .badge.emergency')).to_be_visible(
        timeout=LIVE_MS
    )
    martin.wait_for_timeout(1_000)
    expect(alert).to_have_count(1)
    expect(sent.locator(".emergency-guidance")).to_have_count(1)
    assert_not_reloaded(alice, "Alice's thread")
    assert_not_reloaded(martin, "Dr Martin's inbox")

    # Reloading, Alice still sees whom to call while the conversation is flagged.
    alice.reload()
    expect(sent.locator('a[href="tel:112"]')).to_be_visible()


def test_the_new_request_form_warns_of_suicidal_wording_and_clears_for_benign(
    new_context: Callable[..., BrowserContext],
) -> None:
    patient = log_in(new_context(**PHONE), EXTRA_PATIENT)
    doctor = practitioner_id(patient, "Martin")
    patient.goto(f"/threads/new?practitioner_id={doctor}")
    draft = patient.locator("#draft-guidance")
    expect(draft).to_be_empty()

    patient.locator("#body").fill("")
    patient.locator("#body").press_sequentially(SUICIDAL, delay=5)
    expect(draft.locator('a[href="tel:3114"]')).to_be_visible(timeout=PREVIEW_MS)
    expect(draft.locator('a[href="tel:15"]')).to_be_visible()
    expect(draft.locator('a[href="tel:112"]')).to_be_visible()

    # Rewritten into a plain request: the banner goes away.
    patient.locator("#body").fill("")
    patient.locator("#body").press_sequentially(BENIGN, delay=5)
    expect(draft.locator(".emergency-guidance")).to_have_count(0, timeout=PREVIEW_MS)
    # Nothing was sent along the way.
    assert "/threads/new" in patient.url
