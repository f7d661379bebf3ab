"""CSRF: every state-changing request carries the token of the visitor's pages, or gets 403."""

from __future__ import annotations

import httpx
import pytest
from core_support import (
    ALICE,
    BOB,
    MARTIN,
    PASSWORD,
    SUBJECT_CERTIFICATE,
    SUBJECT_RENEWAL,
    ClientFactory,
    anonymous_token,
    login,
    snapshot,
    thread_by_subject,
)

from server.models import Message, Session

pytestmark = pytest.mark.anyio


async def _message_route() -> str:
    return f"/threads/{(await thread_by_subject(SUBJECT_RENEWAL)).id}/messages"


async def _body_posted(body: str) -> bool:
    return body in await Message.all().values_list("body", flat=True)


async def test_post_without_token_is_forbidden_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await login(client, ALICE)
    before = await snapshot()
    answer = await client.post(await _message_route(), data={"body": "Sans jeton"})
    assert answer.status_code == 403
    assert await snapshot() == before


@pytest.mark.parametrize("token", ["", "0" * 64, "not-a-token", "x" * 5000])
async def test_post_with_a_wrong_token_is_forbidden(token: str, client: httpx.AsyncClient) -> None:
    real = await login(client, ALICE)
    assert token != real
    for sent in (
        {"data": {"body": "Mauvais jeton", "csrf_token": token}},
        {"data": {"body": "Mauvais jeton"}, "headers": {"X-CSRF-Token": token}},
    ):
        answer = await client.post(await _message_route(), **sent)  # type: ignore[arg-type]
        assert answer.status_code == 403
    assert not await _body_posted("Mauvais jeton")


async def test_token_in_the_form_field_is_accepted(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    answer = await client.post(
        await _message_route(), data={"body": "Jeton du formulaire", "csrf_token": token}
    )
    assert answer.status_code == 303
    assert await _body_posted("Jeton du formulaire")


async def test_token_in_the_header_is_accepted(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    answer = await client.post(
        await _message_route(),
        data={"body": "Jeton en en-tête"},
        headers={"X-CSRF-Token": token},
    )
    assert answer.status_code == 303
    assert await _body_posted("Jeton en en-tête")


async def test_header_token_works_for_htmx_requests(client: httpx.AsyncClient) -> None:
    token = await login(client, MARTIN)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    answer = await client.post(
        f"/threads/{thread.id}/accept",
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert (await thread_by_subject(SUBJECT_CERTIFICATE)).status == "open"


async def test_a_token_of_another_user_is_refused(new_client: ClientFactory) -> None:
    alice, bob = await new_client(), await new_client()
    await login(alice, ALICE)
    bobs_token = await login(bob, BOB)
    answer = await alice.post(
        await _message_route(), data={"body": "Jeton de Bob", "csrf_token": bobs_token}
    )
    assert answer.status_code == 403
    assert not await _body_posted("Jeton de Bob")


async def test_a_token_from_an_earlier_session_is_refused(client: httpx.AsyncClient) -> None:
    old = await login(client, ALICE)
    await client.post("/logout", data={"csrf_token": old})
    await login(client, ALICE)
    answer = await client.post(
        await _message_route(), data={"body": "Ancien jeton", "csrf_token": old}
    )
    assert answer.status_code == 403
    assert not await _body_posted("Ancien jeton")


async def test_the_anonymous_token_stops_working_after_login(client: httpx.AsyncClient) -> None:
    anonymous = await anonymous_token(client)
    await login(client, ALICE)
    answer = await client.post(
        await _message_route(), data={"body": "Jeton anonyme", "csrf_token": anonymous}
    )
    assert answer.status_code == 403


async def test_a_token_in_a_json_body_does_not_count(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    answer = await client.post(
        await _message_route(), json={"body": "En JSON", "csrf_token": token}
    )
    assert answer.status_code == 403
    assert not await _body_posted("En JSON")


async def test_login_form_needs_its_token(client: httpx.AsyncClient) -> None:
    # Login CSRF: a third-party page must not log the victim into the attacker's account.
    await client.get("/login")
    answer = await client.post("/login", data={"email": ALICE, "password": PASSWORD})
    assert answer.status_code == 403
    assert await Session.all().count() == 0


async def test_login_form_without_the_visitor_cookie_is_refused(
    new_client: ClientFactory,
) -> None:
    victim, attacker = await new_client(), await new_client()
    token = await anonymous_token(attacker)  # bound to the attacker's visitor cookie
    answer = await victim.post(
        "/login", data={"email": ALICE, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 403
    assert await Session.all().count() == 0


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/logout", {}),
        ("/language", {"locale": "en"}),
        ("/threads", {"practitioner_id": "1", "category": "question", "subject": "s", "body": "b"}),
        ("/settings", {"response_days": "5", "max_open_requests_per_patient": "5"}),
    ],
)
async def test_every_post_route_checks_the_token(
    path: str, form: dict[str, str], new_client: ClientFactory
) -> None:
    for email in (ALICE, MARTIN):
        browser = await new_client()
        await login(browser, email)
        before = await snapshot()
        sessions = await Session.all().count()
        answer = await browser.post(path, data=form)
        assert answer.status_code == 403, (email, path)
        assert await snapshot() == before
        assert await Session.all().count() == sessions


@pytest.mark.parametrize("verb", ["messages", "accept", "decline", "close", "assign"])
async def test_every_thread_action_checks_the_token(verb: str, client: httpx.AsyncClient) -> None:
    await login(client, MARTIN)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    before = await snapshot()
    answer = await client.post(
        f"/threads/{thread.id}/{verb}",
        data={"body": "b", "reason": "r", "assignee_id": "self", "csrf_token": "forged"},
    )
    assert answer.status_code == 403
    assert await snapshot() == before
