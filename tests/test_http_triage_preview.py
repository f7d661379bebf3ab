"""POST /triage/preview, the banner a patient sees while still typing, and the guidance the
thread page keeps showing once a conversation is flagged."""

from __future__ import annotations

import re

import httpx
import pytest
from core_support import (
    ALICE,
    BENIGN,
    CARDIAC,
    MARTIN,
    SECRETARIAT,
    SUBJECT_RENEWAL,
    SUICIDAL,
    ClientFactory,
    anonymous_token,
    login,
    thread_by_subject,
    user,
)

from server.actions import messages
from server.actions.triage import record_assessment

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]


# Every patient page carries the general "call 15 or 112" notice: the guidance is this section.
GUIDANCE = re.compile(r'<section class="emergency-guidance".*?</section>', re.S)


def guidance_of(html: str) -> str:
    """The emergency guidance section of a page or fragment, or "" if there is none."""
    found = GUIDANCE.findall(html)
    assert len(found) <= 1, "the guidance appears once at most"
    return found[0] if found else ""


async def preview(
    client: httpx.AsyncClient, body: str, token: str | None, *, htmx: bool = True
) -> httpx.Response:
    data = {"body": body}
    if token is not None:
        data["csrf_token"] = token
    headers = {"HX-Request": "true"} if htmx else {}
    return await client.post("/triage/preview", data=data, headers=headers)


async def test_a_patient_typing_an_emergency_gets_the_numbers_to_call(
    client: httpx.AsyncClient,
) -> None:
    token = await login(client, ALICE)
    answer = await preview(client, CARDIAC, token)
    assert answer.status_code == 200
    banner = guidance_of(answer.text)
    assert banner, answer.text
    assert 'href="tel:15"' in banner
    assert 'href="tel:112"' in banner
    assert 'href="sms:114"' in banner
    assert 'href="tel:3114"' not in answer.text, "3114 is for suicidal wording only"
    assert 'role="alert"' in banner
    # Advice only: the draft is not sent, nothing is stored.
    assert "poitrine" not in answer.text


async def test_suicidal_wording_also_gets_3114(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    answer = await preview(client, SUICIDAL, token)
    assert answer.status_code == 200
    banner = guidance_of(answer.text)
    for link in ('href="tel:15"', 'href="tel:112"', 'href="tel:3114"'):
        assert link in banner


@pytest.mark.parametrize("draft", [BENIGN, "", "   ", "Merci docteur, à bientôt."])
async def test_a_benign_draft_gets_an_empty_answer(client: httpx.AsyncClient, draft: str) -> None:
    token = await login(client, ALICE)
    answer = await preview(client, draft, token)
    assert answer.status_code == 200
    assert answer.text.strip() == ""


async def test_without_the_form_field_the_answer_is_empty(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    answer = await client.post("/triage/preview", data={"csrf_token": token})
    assert answer.status_code == 200
    assert answer.text.strip() == ""


async def test_the_token_may_come_as_a_header(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    answer = await client.post(
        "/triage/preview", data={"body": CARDIAC}, headers={"X-CSRF-Token": token}
    )
    assert answer.status_code == 200
    assert 'href="tel:112"' in guidance_of(answer.text)


async def test_the_draft_is_never_echoed_as_markup(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    answer = await preview(client, f"<script>alert(1)</script><img src=x> {SUICIDAL}", token)
    assert answer.status_code == 200
    assert 'href="tel:3114"' in guidance_of(answer.text)
    assert "<script>alert" not in answer.text
    assert "<img src=x>" not in answer.text


async def test_a_huge_draft_is_answered_not_crashed_on(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    padding = "a" * 20_000
    first = await preview(client, f"{CARDIAC} {padding}", token)
    assert first.status_code == 200
    assert 'href="tel:15"' in guidance_of(first.text)
    benign = await preview(client, f"{BENIGN} {padding}", token)
    assert benign.status_code == 200
    assert benign.text.strip() == ""
    # Beyond what a message may hold, nothing would be sent: the banner is not for that part.
    beyond = await preview(client, f"{padding} {SUICIDAL}", token)
    assert beyond.status_code == 200
    assert 'href="tel:3114"' not in beyond.text


@pytest.mark.parametrize("email", [MARTIN, SECRETARIAT])
async def test_staff_are_refused(client: httpx.AsyncClient, email: str) -> None:
    token = await login(client, email)
    answer = await preview(client, SUICIDAL, token)
    assert answer.status_code == 404
    assert guidance_of(answer.text) == ""
    assert 'href="tel:3114"' not in answer.text


@pytest.mark.parametrize("htmx", [True, False])
async def test_a_visitor_who_is_not_logged_in_is_refused(
    client: httpx.AsyncClient, htmx: bool
) -> None:
    token = await anonymous_token(client)
    answer = await preview(client, SUICIDAL, token, htmx=htmx)
    if htmx:
        # What htmx does with it: the browser goes to the login page.
        assert answer.status_code == 204
        assert answer.headers["HX-Redirect"] == "/login"
        assert answer.text == ""
    else:
        assert answer.status_code == 401
    assert guidance_of(answer.text) == ""
    assert 'href="tel:3114"' not in answer.text


async def test_without_the_csrf_token_a_patient_is_refused(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    for sent in (None, "", token[:-2] + "xx"):
        answer = await preview(client, CARDIAC, sent)
        assert answer.status_code == 403, sent
        assert guidance_of(answer.text) == ""


async def test_a_token_from_another_session_is_refused(new_client: ClientFactory) -> None:
    alice, other = await new_client(), await new_client()
    await login(alice, ALICE)
    foreign = await login(other, ALICE)
    answer = await preview(alice, CARDIAC, foreign)
    assert answer.status_code == 403


async def test_get_is_not_a_preview(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    answer = await client.get("/triage/preview", params={"body": CARDIAC})
    assert answer.status_code == 405
    assert guidance_of(answer.text) == ""


# --- the forms that call it ------------------------------------------------------------------


async def test_the_patients_message_box_asks_for_the_preview(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    page = await client.get(f"/threads/{thread.id}")
    assert page.status_code == 200
    assert 'hx-post="/triage/preview"' in page.text
    assert 'id="draft-guidance"' in page.text
    new_request = await client.get(f"/threads/new?practitioner_id={(await user(MARTIN)).id}")
    assert new_request.status_code == 200
    assert 'hx-post="/triage/preview"' in new_request.text
    assert 'id="draft-guidance"' in new_request.text


async def test_staff_message_box_does_not_ask_for_the_preview(client: httpx.AsyncClient) -> None:
    await login(client, MARTIN)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    page = await client.get(f"/threads/{thread.id}")
    assert page.status_code == 200
    assert 'hx-post="/triage/preview"' not in page.text


# --- the thread page once triage has flagged it -----------------------------------------------


async def _flag_alices_thread(body: str, categories: list[str]) -> int:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    message = await messages.post_message(await user(ALICE), thread, body)
    assert await record_assessment(message.id, True, categories)
    return thread.id


async def test_the_patient_sees_the_guidance_on_a_flagged_thread(
    client: httpx.AsyncClient,
) -> None:
    await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    before = await client.get(f"/threads/{thread.id}")
    assert before.status_code == 200
    assert guidance_of(before.text) == "", "no guidance before anything was flagged"

    await _flag_alices_thread(CARDIAC, ["cardiac"])
    page = await client.get(f"/threads/{thread.id}")
    banner = guidance_of(page.text)
    assert 'href="tel:15"' in banner and 'href="tel:112"' in banner
    assert 'href="tel:3114"' not in banner


async def test_a_suicidal_flag_keeps_3114_on_the_thread_page(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    thread_id = await _flag_alices_thread(SUICIDAL, ["suicidal"])
    page = await client.get(f"/threads/{thread_id}")
    assert 'href="tel:3114"' in guidance_of(page.text)


@pytest.mark.parametrize("email", [MARTIN, SECRETARIAT])
async def test_staff_see_the_emergency_badge_not_the_patients_guidance(
    client: httpx.AsyncClient, email: str
) -> None:
    await login(client, email)
    thread_id = await _flag_alices_thread(CARDIAC, ["cardiac"])
    page = await client.get(f"/threads/{thread_id}")
    assert page.status_code == 200
    assert guidance_of(page.text) == ""
    assert f'data-emergency-thread-id="{thread_id}"' in page.text


@pytest.mark.parametrize(("body", "expected"), [(CARDIAC, True), (SUICIDAL, True), (BENIGN, False)])
async def test_the_patients_own_answer_to_a_post_carries_the_guidance_at_once(
    client: httpx.AsyncClient, body: str, expected: bool
) -> None:
    token = await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await client.post(
        f"/threads/{thread.id}/messages",
        data={"body": body, "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 201
    assert "data-message-id" in answer.text
    guidance = GUIDANCE.search(answer.text)
    assert (guidance is not None) is expected
    if guidance is not None:
        assert 'id="emergency-guidance" hx-swap-oob="true"' in answer.text
        assert 'href="tel:15"' in guidance.group(0)
        assert ('href="tel:3114"' in guidance.group(0)) is (body == SUICIDAL)


async def test_staff_answers_never_carry_patient_guidance(client: httpx.AsyncClient) -> None:
    token = await login(client, MARTIN)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await client.post(
        f"/threads/{thread.id}/messages",
        data={"body": CARDIAC, "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 201
    assert GUIDANCE.search(answer.text) is None
