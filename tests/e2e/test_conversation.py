"""A whole conversation on a phone: a patient writes, the practitioner accepts and answers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest

from .helpers import (
    ALICE,
    BOB,
    DR_MARTIN,
    practitioner_id,
    require_browser,
    screenshot,
    scroll_width,
    thread_id_by_subject,
    use_english,
)

# Before Playwright is imported: without it this module is skipped (or fails on CI).
require_browser()

from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.e2e


def expect_emergency_notice(page: Page) -> None:
    notice = page.locator(".emergency-notice")
    expect(notice).to_be_visible()
    expect(notice.locator("a[href='tel:15']")).to_be_visible()
    expect(notice.locator("a[href='tel:112']")).to_be_visible()


def test_patient_writes_practitioner_accepts_and_answers(login: Callable[..., Page]) -> None:
    marker = uuid.uuid4().hex[:8]
    subject = f"Question sur mon traitement {marker}"
    body = f"Bonjour docteur, puis-je prendre du paracétamol avec mon traitement ? ({marker})"
    answer = f"Oui, jusqu'à 3 g par jour. <b>Pas plus</b> & pas d'ibuprofène. ({marker})"

    # Alice writes to Dr Martin from her phone.
    alice = login(ALICE)
    assert re.fullmatch(r".*/", alice.url)
    expect_emergency_notice(alice)
    martin_id = practitioner_id(alice, "Martin")
    alice.click(f"[data-practitioner-id='{martin_id}'] a[href^='/threads/new']")
    expect(alice).to_have_url(re.compile(rf"/threads/new\?practitioner_id={martin_id}$"))
    expect_emergency_notice(alice)
    expect(alice.locator("#practitioner_id")).to_have_value(martin_id)
    alice.select_option("#practitioner_id", martin_id)
    alice.select_option("#category", "question")
    alice.fill("#subject", subject)
    alice.fill("#body", body)
    with alice.expect_navigation():
        alice.click("form[action='/threads'] button[type='submit']")
    expect(alice).to_have_url(re.compile(r"/threads/\d+$"))
    thread_id = alice.url.rsplit("/", 1)[1]
    expect(alice.locator("#thread-title")).to_have_text(subject)
    expect(alice.locator(".messages [data-message-id]", has_text=body)).to_be_visible()
    expect_emergency_notice(alice)
    assert scroll_width(alice) <= 360

    # Dr Martin, in another browser context, finds it in his inbox, accepts it and answers.
    martin = login(DR_MARTIN)
    expect(martin).to_have_url(re.compile(r"/inbox"))
    expect(martin.locator(".emergency-notice")).to_have_count(0)
    expect(martin.locator("#thread-list")).to_contain_text(subject)
    assert thread_id_by_subject(martin, subject) == thread_id
    martin.click(f"#thread-list [data-thread-id='{thread_id}'] a")
    expect(martin).to_have_url(re.compile(rf"/inbox\?.*thread={thread_id}"))
    panel = martin.locator("#thread-pane #thread")
    expect(panel.locator("#thread-title")).to_have_text(subject)
    expect(panel.locator("[data-message-id]", has_text=body)).to_be_visible()
    expect(panel.locator("textarea[name='body']")).to_have_count(0)

    # From here on htmx swaps fragments: a full reload would lose this marker.
    martin.evaluate("() => { window.__e2eSamePage = true; }")
    panel.locator(f"form[action='/threads/{thread_id}/accept'] button[type='submit']").click()
    box = martin.locator("#thread textarea[name='body']")
    expect(box).to_be_visible()
    box.fill(answer)
    martin.locator("#thread form.message-form button[type='submit']").click()
    sent = martin.locator(".messages [data-message-id]", has_text=answer)
    expect(sent).to_be_visible()
    expect(sent.locator("b")).to_have_count(0)  # shown as text, not markup
    expect(box).to_have_value("")
    assert martin.evaluate("() => window.__e2eSamePage === true"), "the page was reloaded"
    screenshot(martin, "conversation inbox 360")
    expect(martin.locator(".messages [data-message-id]", has_text=answer)).to_have_count(1)

    # Alice reloads her thread and reads the answer.
    alice.reload()
    expect(alice.locator(".messages [data-message-id]", has_text=answer)).to_be_visible()
    expect(alice.locator(".messages [data-message-id]", has_text=body)).to_be_visible()
    assert alice.locator(".messages [data-message-id]").count() == 2
    assert scroll_width(alice) <= 360
    screenshot(alice, "conversation patient thread 360")


def test_patient_without_reachable_practitioner_is_told_why(login: Callable[..., Page]) -> None:
    # Dr Martin's id, as Alice (who has consulted him) sees it.
    alice = login(ALICE)
    martin_id = practitioner_id(alice, "Martin")

    bob = login(BOB)
    use_english(bob)
    expect_emergency_notice(bob)
    cards = bob.locator("[data-practitioner-id]")
    expect(cards).to_have_count(1)
    expect(cards).to_contain_text("Bernard")
    expect(bob.locator(f"[data-practitioner-id='{martin_id}']")).to_have_count(0)
    bernard = bob.locator("[data-practitioner-id]", has_text="Bernard")
    expect(bernard.locator(".unavailable")).to_have_text(
        "This practitioner does not offer messaging."
    )
    expect(bernard.locator("a[href^='/threads/new']")).to_have_count(0)
    assert scroll_width(bob) <= 360

    bob.goto("/threads/new")
    expect_emergency_notice(bob)
    expect(bob.locator("form[action='/threads']")).to_have_count(0)
    expect(bob.locator("main")).to_contain_text(
        "None of your practitioners can receive a request at the moment."
    )
    expect(bob.locator("main [data-practitioner-id]", has_text="Bernard")).to_contain_text(
        "This practitioner does not offer messaging."
    )
    expect(bob.locator(f"main [data-practitioner-id='{martin_id}']")).to_have_count(0)
    assert scroll_width(bob) <= 360

    # Posting to Dr Martin anyway is refused, with the reason shown.
    token = bob.locator("meta[name='csrf-token']").get_attribute("content")
    assert token
    refused = bob.request.post(
        "/threads",
        form={
            "csrf_token": token,
            "practitioner_id": martin_id,
            "category": "question",
            "subject": "Puis-je vous écrire ?",
            "body": "Bonjour docteur.",
        },
        max_redirects=0,
    )
    assert 400 <= refused.status < 500, refused.status
    assert "You can only write to a practitioner you have already consulted." in refused.text()


def test_emergency_notice_on_every_patient_page(login: Callable[..., Page]) -> None:
    alice = login(ALICE)
    thread_id = thread_id_by_subject(alice, "Renouvellement de mon traitement")
    for path in ("/", "/threads/new", f"/threads/{thread_id}"):
        alice.goto(path)
        expect_emergency_notice(alice)
    alice.context.clear_cookies()
    alice.goto("/login")
    expect_emergency_notice(alice)
