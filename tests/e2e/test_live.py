"""Live updates as people see them: messages, rows, queue, typing, reconnects and logout.

Patients' pages follow `GET /events` (SSE), staff pages `WS /ws`; nothing here reloads a page
unless the step says so. A marker set in `window` proves a page was not reloaded.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from service_support import create_demo_data, free_port, is_healthy, stop_process

from .helpers import (
    ALICE,
    DESKTOP,
    DR_MARTIN,
    EXTRA_PATIENT,
    PHONE,
    SECOND_EXTRA_PATIENT,
    SECRETARIAT,
    browser_contexts,
    log_in,
    require_browser,
    screenshot,
    scroll_width,
    thread_id_by_subject,
)

# Before Playwright is imported: without it this module is skipped (or fails on CI).
require_browser()

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect  # noqa: E402

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "-m", "server.cli", "serve"]
OPEN_THREAD = "Renouvellement de mon traitement pour la tension"
UP_TO_DATE = "À jour"
RECONNECTING = "Reconnexion…"
# A fragment that should come once may come twice a moment later (form answer, then stream).
SETTLE_MS = 1_000
# The WebSocket extension backs off with full jitter (up to 8 s after three failed attempts).
RECONNECT_MS = 25_000
# Messages a socket misses before it reconnects in the catch-up test: enough for the replay to
# be still under way when the socket closes, right after it opened.
CATCH_UP_MESSAGES = 10
BLOCKING_IMPACTS = {"serious", "critical"}

_axe = Axe()


# --- what a person sees ------------------------------------------------------------------------


def expect_up_to_date(page: Page, timeout: float = 10_000) -> None:
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "live", timeout=timeout)
    expect(status).to_have_text(UP_TO_DATE)


def mark_page(page: Page) -> None:
    """Set a marker that a reload would wipe out."""
    page.evaluate("() => { window.__e2eSamePage = true; }")


def assert_not_reloaded(page: Page, name: str) -> None:
    assert page.evaluate("() => window.__e2eSamePage === true"), f"{name}: the page was reloaded"


def messages_with(page: Page, thread_id: str, text: str) -> Locator:
    return page.locator(f"#messages-{thread_id} [data-message-id]", has_text=text)


def expect_once(page: Page, thread_id: str, text: str, timeout: float = 10_000) -> str:
    """The message with `text` shows exactly once, still once after a moment; its id."""
    found = messages_with(page, thread_id, text)
    expect(found).to_have_count(1, timeout=timeout)
    page.wait_for_timeout(SETTLE_MS)
    expect(found).to_have_count(1, timeout=1)
    message_id = found.get_attribute("data-message-id")
    assert message_id and message_id.isdigit()
    assert page.locator(f"[data-message-id='{message_id}']").count() == 1
    return message_id


def open_staff_page(context: BrowserContext, email: str, path: str) -> Page:
    """Log in, let the home page's stream connect, then go to `path`.

    Leaving a page at once, while its WebSocket still catches up, can make the service log an
    error (see test_a_socket_that_leaves_while_catching_up_logs_no_error); waiting keeps the
    other tests about what they check.
    """
    page = log_in(context, email)
    expect_up_to_date(page)
    page.goto(path)
    return page


def post_message(page: Page, thread_id: str, text: str) -> None:
    """Type `text` in the page's message box and send it with the form (htmx, no reload)."""
    box = page.locator(f"#thread-controls-{thread_id} textarea[name='body']")
    box.fill(text)
    with page.expect_response(
        lambda r: r.url.endswith(f"/threads/{thread_id}/messages") and r.request.method == "POST"
    ) as answer:
        page.locator(
            f"#thread-controls-{thread_id} form.message-form button[type='submit']"
        ).click()
    assert answer.value.status in (200, 201), answer.value.status
    expect(box).to_have_value("")


def post_over_http(context: BrowserContext, token: str, thread_id: str, text: str) -> None:
    """Post a message as the context's user without any page (another client)."""
    answer = context.request.post(
        f"/threads/{thread_id}/messages",
        form={"csrf_token": token, "body": text},
        max_redirects=0,
    )
    assert answer.status == 303, (answer.status, answer.text()[:500])


def csrf(page: Page) -> str:
    token = page.locator("meta[name='csrf-token']").get_attribute("content")
    assert token
    return token


def assert_accessible(page: Page, name: str) -> None:
    page.wait_for_load_state("load")
    violations = _axe.run(page).response["violations"]
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    report = "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(", ".join(map(str, n["target"])) for n in v["nodes"])
        for v in blocking
    )
    assert not blocking, f"{name} ({page.url}):\n{report}"
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert scroll_width(page) <= width, f"{name}: scrolls sideways"
    screenshot(page, f"live {name}")


# --- tests against the shared service ----------------------------------------------------------


def test_messages_and_unread_state_follow_live(
    new_context: Callable[..., BrowserContext],
) -> None:
    """Dr Martin and Alice write to each other, each seeing the other's message arrive once;
    Alice's home tab shows the unread answer, and stops when she reads it in another tab."""
    marker = uuid.uuid4().hex[:8]
    answer = f"Je vous renouvelle le traitement pour trois mois. ({marker})"
    reply = f"Merci docteur, je passe chercher l'ordonnance. ({marker})"

    alice_context = new_context(**PHONE)
    alice = log_in(alice_context, ALICE)
    thread_id = thread_id_by_subject(alice, OPEN_THREAD)
    alice.goto(f"/threads/{thread_id}")
    expect(alice.locator("#thread-title")).to_have_text(OPEN_THREAD)
    # A second tab on her home page, opened after the thread was read.
    home = alice_context.new_page()
    home.goto("/")
    row = home.locator(f"#thread-list #thread-row-{thread_id}")
    expect(row).to_have_count(1)
    expect(row.locator(".unread-count")).to_have_count(0)

    martin = open_staff_page(new_context(**DESKTOP), DR_MARTIN, f"/inbox?thread={thread_id}")
    expect(martin.locator("#thread-pane #thread-title")).to_have_text(OPEN_THREAD)

    for page in (alice, home, martin):
        expect_up_to_date(page)
        mark_page(page)

    # Dr Martin answers with the form: once on his page, once on Alice's, live.
    post_message(martin, thread_id, answer)
    martin_copy = expect_once(martin, thread_id, answer)
    assert expect_once(alice, thread_id, answer) == martin_copy
    # Her home tab shows the thread as unread, live, and still once.
    expect(row.locator(".unread-count")).to_have_text("1 non lu(s)")
    expect(home.locator(f"#thread-list [data-thread-id='{thread_id}']")).to_have_count(1)
    assert_not_reloaded(alice, "Alice's thread")
    assert_not_reloaded(home, "Alice's home")
    assert_not_reloaded(martin, "Dr Martin's inbox")

    # She opens the thread in the other tab: the home tab drops the badge by itself.
    alice.goto(f"/threads/{thread_id}")
    expect(messages_with(alice, thread_id, answer)).to_have_count(1)
    expect(row.locator(".unread-count")).to_have_count(0)
    expect(home.locator(f"#thread-list [data-thread-id='{thread_id}']")).to_have_count(1)
    assert_not_reloaded(home, "Alice's home")

    # Alice answers: live on Dr Martin's page, once on hers.
    expect_up_to_date(alice)
    mark_page(alice)
    post_message(alice, thread_id, reply)
    expect_once(martin, thread_id, reply)
    expect_once(alice, thread_id, reply)
    expect(row.locator(".unread-count")).to_have_count(0)
    assert_not_reloaded(alice, "Alice's thread")
    assert_not_reloaded(home, "Alice's home")
    assert_not_reloaded(martin, "Dr Martin's inbox")

    # After live updates, the pages (live status included) are still accessible.
    assert_accessible(alice, "thread, patient, after live updates")
    assert_accessible(martin, "inbox, after live updates")
    assert_accessible(home, "patient home, after live updates")


def test_queue_follows_requests_live(new_context: Callable[..., BrowserContext]) -> None:
    """A new request joins the secretary's queue live; once accepted it leaves it."""
    subject = f"Question sur un effet secondaire {uuid.uuid4().hex[:8]}"

    secretary = log_in(new_context(**DESKTOP), SECRETARIAT)
    expect(secretary).to_have_url(re.compile(r"/queue$"))
    expect_up_to_date(secretary)
    mark_page(secretary)

    patient = log_in(new_context(**PHONE), EXTRA_PATIENT)
    patient.locator("[data-practitioner-id]", has_text="Martin").locator(
        "a[href^='/threads/new']"
    ).click()
    patient.select_option("#category", "question")
    patient.fill("#subject", subject)
    patient.fill("#body", "Bonjour, j'ai des vertiges depuis le nouveau traitement.")
    with patient.expect_navigation():
        patient.click("form[action='/threads'] button[type='submit']")
    expect(patient).to_have_url(re.compile(r"/threads/\d+$"))
    thread_id = patient.url.rsplit("/", 1)[1]
    expect_up_to_date(patient)
    mark_page(patient)

    queued = secretary.locator(f"#queue-list #queue-row-{thread_id}")
    expect(queued).to_have_count(1)
    expect(queued).to_contain_text(subject)
    secretary.wait_for_timeout(SETTLE_MS)
    expect(secretary.locator(f"#queue-list [data-thread-id='{thread_id}']")).to_have_count(1)

    martin = open_staff_page(new_context(**DESKTOP), DR_MARTIN, f"/inbox?thread={thread_id}")
    martin.locator(f"form[action='/threads/{thread_id}/accept'] button[type='submit']").click()
    expect(martin.locator(f"#thread-controls-{thread_id} textarea[name='body']")).to_be_visible()

    # Accepted: the row leaves the secretary's queue, and the patient sees the new status.
    expect(queued).to_have_count(0)
    expect(patient.locator(f"#thread-header-{thread_id} .badge.status-open")).to_be_visible()
    assert_not_reloaded(secretary, "the queue")
    assert_not_reloaded(patient, "the patient's thread")


def test_practitioner_sees_the_patient_typing(new_context: Callable[..., BrowserContext]) -> None:
    """What Alice types is not sent, but Dr Martin sees that she is writing."""
    alice = log_in(new_context(**PHONE), ALICE)
    thread_id = thread_id_by_subject(alice, OPEN_THREAD)
    alice.goto(f"/threads/{thread_id}")
    martin = open_staff_page(new_context(**DESKTOP), DR_MARTIN, f"/inbox?thread={thread_id}")
    typing = martin.locator(f"#typing-{thread_id}")
    expect(typing).to_have_text("")
    for page in (alice, martin):
        expect_up_to_date(page)
        mark_page(page)

    alice.locator("#message-body").press_sequentially("Bonjour docteur", delay=30)
    expect(typing).to_have_text("Alice Durand écrit…", timeout=3_000)
    assert_not_reloaded(martin, "Dr Martin's inbox")


def test_a_draft_survives_a_live_update_of_the_thread(
    new_context: Callable[..., BrowserContext],
) -> None:
    """Dr Martin is writing an answer when the secretary assigns the conversation (to the same
    person, here): the live update of the thread's controls must not wipe out his draft."""
    draft = "Bonjour Madame, pour votre tension, je vous propose de"
    secretary = log_in(new_context(**DESKTOP), SECRETARIAT)
    token = csrf(secretary)
    martin = open_staff_page(new_context(**DESKTOP), DR_MARTIN, "/inbox?status=all")
    thread_id = thread_id_by_subject(martin, OPEN_THREAD)
    martin.goto(f"/inbox?thread={thread_id}")
    expect_up_to_date(martin)
    mark_page(martin)
    assignee = martin.locator(f"#assignee-{thread_id}").input_value()
    box = martin.locator(f"#thread-controls-{thread_id} textarea[name='body']")
    box.fill(draft)
    cursor = martin.locator("#live-cursor").get_attribute("data-after")

    answer = secretary.context.request.post(
        f"/threads/{thread_id}/assign",
        form={"csrf_token": token, "assignee_id": assignee},
        max_redirects=0,
    )
    assert answer.status == 303, answer.status
    # The update has reached the page (its cursor moved) ...
    expect(martin.locator("#live-cursor")).not_to_have_attribute("data-after", cursor or "")
    expect(martin.locator(f"#assignee-{thread_id}")).to_have_value(assignee)
    # ... and what he was writing is still there.
    expect(box).to_have_value(draft)
    assert_not_reloaded(martin, "Dr Martin's inbox")


def test_first_conversation_shows_up_live_on_the_home_page(
    new_context: Callable[..., BrowserContext],
) -> None:
    """A patient with no conversation yet starts one in another tab: her home page lists it and
    no longer says there is none."""
    subject = f"Première demande {uuid.uuid4().hex[:8]}"
    context = new_context(**PHONE)
    home = log_in(context, SECOND_EXTRA_PATIENT)
    empty_note = home.locator("main .empty-note")
    expect(empty_note).to_have_text("Aucune conversation pour le moment.")
    expect(empty_note).to_be_visible()
    expect(home.locator("#thread-list [data-thread-id]")).to_have_count(0)
    expect_up_to_date(home)
    mark_page(home)

    writer = context.new_page()
    writer.goto("/")
    writer.locator("[data-practitioner-id]", has_text="Martin").locator(
        "a[href^='/threads/new']"
    ).click()
    writer.select_option("#category", "admin")
    writer.fill("#subject", subject)
    writer.fill("#body", "Bonjour, pouvez-vous m'envoyer une facture pour la consultation ?")
    with writer.expect_navigation():
        writer.click("form[action='/threads'] button[type='submit']")
    expect(writer).to_have_url(re.compile(r"/threads/\d+$"))
    thread_id = writer.url.rsplit("/", 1)[1]

    expect(home.locator(f"#thread-list #thread-row-{thread_id}")).to_contain_text(subject)
    expect(home.locator("#thread-list [data-thread-id]")).to_have_count(1)
    assert_not_reloaded(home, "the patient's home")
    expect(empty_note).to_be_hidden()


def test_logout_in_one_tab_logs_out_the_others(
    new_context: Callable[..., BrowserContext],
) -> None:
    """Logging out in one tab sends the other tabs of the same browser to the login page."""
    context = new_context(**PHONE)
    first = log_in(context, ALICE)
    thread_id = thread_id_by_subject(first, OPEN_THREAD)
    second = context.new_page()
    second.goto(f"/threads/{thread_id}")
    for page in (first, second):
        expect_up_to_date(page)

    # No wait for the navigation itself: the tab's own stream may send it to /login first.
    first.click("form[action='/logout'] button[type='submit']", no_wait_after=True)
    expect(first).to_have_url(re.compile(r"/login$"))
    expect(first.locator("#email")).to_be_visible()
    # The other tab follows by itself, through its stream.
    expect(second).to_have_url(re.compile(r"/login$"), timeout=5_000)
    expect(second.locator("#email")).to_be_visible()
    # And the session is over there too: its pages ask for a login again.
    second.goto("/")
    expect(second).to_have_url(re.compile(r"/login"))


# --- reconnecting: a service of this test's own, stopped and started again ----------------------


class SpareService:
    """`colloque serve` on its own SQLite database and port, which a test may stop and restart."""

    def __init__(self, tmp_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_dir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)
        self.env["DATABASE_URL"] = f"sqlite://{tmp_dir / 'live.sqlite3'}"
        for name in ("REDIS_URL", "PORT"):
            self.env.pop(name, None)
        self.env["COLLOQUE_ENV"] = "development"
        self.env["PYTHONUNBUFFERED"] = "1"
        create_demo_data(self.env)

    def start(self) -> None:
        assert self.process is None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*SERVE, "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while not is_healthy(f"{self.url}/healthz"):
            assert self.process.poll() is None, f"the service exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"the service did not start:\n{self.log()}"
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop exactly the process started above, by its pid."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def assert_no_errors(self) -> None:
        log = self.log()
        assert "Traceback (most recent call last)" not in log, (
            f"the service logged an error:\n{log}"
        )


@pytest.fixture
def spare_service(tmp_path: Path) -> Iterator[SpareService]:
    service = SpareService(tmp_path)
    try:
        service.start()
        yield service
    finally:
        service.stop()


@pytest.fixture
def spare_context(
    browser: Browser, spare_service: SpareService
) -> Iterator[Callable[..., BrowserContext]]:
    yield from browser_contexts(browser, spare_service.url)


def test_reconnects_after_a_restart_without_losing_messages(
    spare_service: SpareService, spare_context: Callable[..., BrowserContext]
) -> None:
    """The service stops: both pages say they are reconnecting. It starts again and messages
    are posted before the pages are back: each page says it is up to date and shows them, once,
    in order, without a reload."""
    marker = uuid.uuid4().hex[:8]
    from_martin = f"Message envoyé pendant la coupure, docteur ({marker})"
    from_alice = f"Message envoyé pendant la coupure, patiente ({marker})"

    alice_context = spare_context(**PHONE)
    alice = log_in(alice_context, ALICE)
    thread_id = thread_id_by_subject(alice, OPEN_THREAD)
    alice.goto(f"/threads/{thread_id}")
    martin_context = spare_context(**DESKTOP)
    martin = log_in(martin_context, DR_MARTIN)
    martin.goto(f"/inbox?thread={thread_id}")
    for page in (alice, martin):
        expect_up_to_date(page)
        mark_page(page)
    # The two other clients post over HTTP with the same sessions (the pages' tokens).
    alice_token, martin_token = csrf(alice), csrf(martin)

    spare_service.stop()
    for page in (alice, martin):
        status = page.locator("#live-status")
        expect(status).to_have_attribute("data-state", "reconnecting")
        expect(status).to_have_text(RECONNECTING)

    spare_service.start()
    # Posted at once, most likely before either page has reconnected.
    post_over_http(martin_context, martin_token, thread_id, from_martin)
    post_over_http(alice_context, alice_token, thread_id, from_alice)

    for page in (alice, martin):
        expect_up_to_date(page, timeout=RECONNECT_MS)
        first = expect_once(page, thread_id, from_martin)
        second = expect_once(page, thread_id, from_alice)
        assert int(first) < int(second)
        bodies = page.locator(f"#messages-{thread_id} [data-message-id]").all_inner_texts()
        assert [i for i, b in enumerate(bodies) if marker in b] == [
            len(bodies) - 2,
            len(bodies) - 1,
        ], "the messages missed while disconnected must come last, in order"
    assert_not_reloaded(alice, "Alice's thread")
    assert_not_reloaded(martin, "Dr Martin's inbox")
    spare_service.assert_no_errors()


def test_a_socket_that_leaves_while_catching_up_logs_no_error(
    spare_service: SpareService, spare_context: Callable[..., BrowserContext]
) -> None:
    """A staff page's socket reconnects after missing updates (a laptop waking up) and goes
    again at once (the page is left, the network drops): it goes while the service still
    replays what it missed. The service must take that in its stride, without an error."""
    secretary_context = spare_context(**DESKTOP)
    token = csrf(log_in(secretary_context, SECRETARIAT))
    martin = log_in(spare_context(**DESKTOP), DR_MARTIN)
    martin.goto("/inbox?status=all")
    thread_id = thread_id_by_subject(martin, OPEN_THREAD)
    # What a socket resuming from the start will have to catch up on.
    for number in range(CATCH_UP_MESSAGES):
        post_over_http(secretary_context, token, thread_id, f"Note du secrétariat n° {number}")
    closed = martin.evaluate(
        """async (attempts) => {
            let closed = 0;
            for (let i = 0; i < attempts; i++) {
                await new Promise((resolve) => {
                    const socket = new WebSocket(`ws://${location.host}/ws?after=0`);
                    socket.onopen = () => socket.close();
                    socket.onclose = resolve;
                });
                closed += 1;
            }
            return closed;
        }""",
        3,
    )
    assert closed == 3

    # The page itself is fine, and the service logged no error meanwhile.
    martin.goto(f"/inbox?thread={thread_id}")
    expect(messages_with(martin, thread_id, "Note du secrétariat n° 0")).to_have_count(1)
    expect_up_to_date(martin)
    martin.wait_for_timeout(SETTLE_MS)
    spare_service.assert_no_errors()
