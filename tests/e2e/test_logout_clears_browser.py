"""After logging out, the browser keeps nothing of the conversations: no copy in its storage,
none in htmx's history cache, and Back shows no conversation. Also: the account pages where
logging out everywhere and two-step verification live pass axe on a phone."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from .helpers import ALICE, BOB, require_browser, scroll_width, thread_id_by_subject

# Before Playwright is imported: without it this module is skipped (or fails on CI).
require_browser()

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.e2e

SUBJECT = "Renouvellement de mon traitement pour la tension"

_STORED_TEXT = """() => {
  const texts = [];
  for (const store of [window.localStorage, window.sessionStorage]) {
    for (let i = 0; i < store.length; i++) {
      const key = store.key(i);
      texts.push(key + "=" + store.getItem(key));
    }
  }
  return texts.join("\\n");
}"""


def test_logout_leaves_no_conversation_in_the_browser(login: Callable[..., Page]) -> None:
    canary = f"canari-{uuid.uuid4().hex[:12]}"
    alice = login(ALICE)
    thread_id = thread_id_by_subject(alice, SUBJECT)
    alice.goto(f"/threads/{thread_id}")
    alice.locator("#thread textarea[name='body']").fill(f"Message témoin {canary}")
    alice.locator("#thread form.message-form button[type='submit']").click()
    expect(alice.locator(".messages [data-message-id]", has_text=canary)).to_be_visible()
    # Browse on with htmx and history, as people do, so that anything kept would be kept now.
    alice.goto("/")
    alice.goto(f"/threads/{thread_id}")
    expect(alice.locator(".messages", has_text=canary)).to_be_visible()
    # Whatever a script, an extension or a future htmx setting might leave behind, logging out
    # must wipe: plant a copy where htmx keeps its history snapshots.
    alice.evaluate(
        "(canary) => { localStorage.setItem('htmx-history-cache', JSON.stringify("
        "[{url: location.pathname, content: canary}])); sessionStorage.setItem('draft', canary); }",
        canary,
    )
    assert canary in alice.evaluate(_STORED_TEXT)

    with alice.expect_navigation():
        alice.click("form[action='/logout'] button[type='submit']")
    expect(alice).to_have_url(f"{alice.url.split('/login')[0]}/login")

    stored = alice.evaluate(_STORED_TEXT)
    assert canary not in stored, stored
    assert alice.evaluate("() => localStorage.getItem('htmx-history-cache')") is None

    # Back: the thread is not shown from any cache, the server sends the login page instead.
    alice.go_back()
    alice.wait_for_load_state()
    assert "/login" in alice.url
    assert canary not in alice.content()
    assert SUBJECT not in alice.content()
    alice.go_back()
    alice.wait_for_load_state()
    assert canary not in alice.content()


def test_account_pages_pass_axe_on_a_phone(login: Callable[..., Page]) -> None:
    """The account page and the set-up page (key, QR code) work on a small screen too."""
    bob = login(BOB)
    axe = Axe()
    bob.goto("/account")
    pages = {"account": bob.url}
    with bob.expect_navigation():
        bob.click("form[action='/account/second-factor/start'] button[type='submit']")
    expect(bob.locator("img.qr")).to_be_visible()
    pages["set-up"] = bob.url
    for name in pages:
        bob.goto(pages[name])
        bob.wait_for_load_state("load")
        serious = [
            v["id"]
            for v in axe.run(bob).response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not serious, f"{name}: {serious}"
        assert scroll_width(bob) <= 360, f"{name} scrolls sideways"
