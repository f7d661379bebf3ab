"""What pages show: the CSRF meta tag everywhere, French by default, the emergency notice,
the patient's practitioners, and the health check."""

from __future__ import annotations

import re

import httpx
import pytest
from core_support import (
    ALICE,
    BERNARD,
    BOB,
    CHLOE,
    MARTIN,
    PETIT,
    SECRETARIAT,
    SUBJECT_CERTIFICATE,
    SUBJECT_RENEWAL,
    SUBJECT_RESULTS,
    ClientFactory,
    anonymous_token,
    csrf_from,
    login,
    thread_by_subject,
    user,
)

from server import db as server_db
from server.models import Message, Practice

pytestmark = pytest.mark.anyio

CSRF_META = re.compile(r'<meta name="csrf-token" content="[0-9a-f]{64}">')


def _pages_of(email: str, renewal: int, results: int) -> list[str]:
    if email == ALICE:
        return ["/", "/threads/new", f"/threads/{renewal}", "/threads/new?practitioner_id=1"]
    if email == MARTIN:
        return [
            "/inbox",
            "/inbox?status=all",
            "/inbox?status=pending",
            f"/inbox?thread={renewal}",
            "/settings",
            "/settings?saved=1",
            f"/threads/{renewal}",
        ]
    assert email == SECRETARIAT
    return ["/queue", f"/threads/{renewal}", f"/threads/{results}"]


@pytest.mark.parametrize("email", [ALICE, MARTIN, SECRETARIAT])
async def test_every_page_has_the_csrf_meta_tag(email: str, client: httpx.AsyncClient) -> None:
    renewal = (await thread_by_subject(SUBJECT_RENEWAL)).id
    results = (await thread_by_subject(SUBJECT_RESULTS)).id
    token = await login(client, email)
    for path in _pages_of(email, renewal, results):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert CSRF_META.search(page.text), path
        assert csrf_from(page.text) == token, path
        assert page.headers["content-type"].startswith("text/html")


async def test_login_and_error_pages_have_the_csrf_meta_tag(client: httpx.AsyncClient) -> None:
    login_page = await client.get("/login")
    assert CSRF_META.search(login_page.text)
    missing = await client.get("/no-such-page", headers={"accept": "text/html"})
    assert missing.status_code == 404
    assert CSRF_META.search(missing.text)
    await login(client, BOB)
    hidden = await client.get(
        f"/threads/{(await thread_by_subject(SUBJECT_RENEWAL)).id}",
        headers={"accept": "text/html"},
    )
    assert hidden.status_code == 404
    assert CSRF_META.search(hidden.text)


async def test_pages_with_health_data_are_not_cached(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    for path in ("/", f"/threads/{thread.id}"):
        assert "no-store" in (await client.get(path)).headers.get("cache-control", "")


# --- French by default, and the emergency notice ------------------------------------------------


def _assert_emergency_notice_in_french(html: str) -> None:
    assert 'href="tel:15"' in html
    assert 'href="tel:112"' in html
    assert "urgence" in html.lower()
    # The English message ids must not leak into a French page.
    assert "Messaging is not for emergencies" not in html
    assert "In an emergency call" not in html


async def test_login_page_is_french_with_the_emergency_notice(client: httpx.AsyncClient) -> None:
    page = await client.get("/login", headers={"accept-language": "en-US,en;q=0.9"})
    assert '<html lang="fr">' in page.text
    _assert_emergency_notice_in_french(page.text)
    assert ">Log in<" not in page.text


async def test_patient_pages_are_french_with_the_emergency_notice(
    client: httpx.AsyncClient,
) -> None:
    await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    for path in ("/", "/threads/new", f"/threads/{thread.id}"):
        page = await client.get(path)
        assert page.status_code == 200
        assert '<html lang="fr">' in page.text, path
        _assert_emergency_notice_in_french(page.text)


async def test_failed_login_message_is_french(client: httpx.AsyncClient) -> None:
    token = await anonymous_token(client)
    answer = await client.post(
        "/login", data={"email": ALICE, "password": "wrong", "csrf_token": token}
    )
    assert answer.status_code == 401
    assert "Incorrect email address or password" not in answer.text
    assert "mot de passe" in answer.text.lower()


async def test_english_is_one_click_away(client: httpx.AsyncClient) -> None:
    token = await anonymous_token(client)
    answer = await client.post(
        "/language", data={"locale": "en", "next": "/login", "csrf_token": token}
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    page = await client.get("/login")
    assert '<html lang="en">' in page.text
    assert "Messaging is not for emergencies" in page.text
    assert 'href="tel:15"' in page.text


async def test_a_users_language_choice_follows_them(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    await client.post("/language", data={"locale": "en", "next": "/", "csrf_token": token})
    assert (await user(ALICE)).locale == "en"
    client.cookies.clear()
    await login(client, ALICE)
    assert '<html lang="en">' in (await client.get("/")).text


# --- the patient's practitioners ------------------------------------------------------------


def _practitioner_elements(html: str) -> dict[str, str]:
    """`data-practitioner-id` -> the element's own text (up to its closing tag)."""
    found = {}
    for match in re.finditer(r'<(\w+)[^>]*data-practitioner-id="(\d+)"[^>]*>', html):
        tag, practitioner_id = match.group(1), match.group(2)
        end = html.find(f"</{tag}>", match.end())
        found[practitioner_id] = html[match.end() : end]
    return found


@pytest.mark.parametrize(
    ("patient", "consulted"),
    [(ALICE, {MARTIN, BERNARD}), (BOB, {BERNARD}), (CHLOE, {PETIT})],
)
async def test_home_shows_every_practitioner_consulted(
    patient: str, consulted: set[str], client: httpx.AsyncClient
) -> None:
    await login(client, patient)
    elements = _practitioner_elements((await client.get("/")).text)
    expected = {str((await user(email)).id): email for email in consulted}
    assert set(elements) == set(expected)
    for practitioner_id, email in expected.items():
        assert (await user(email)).display_name in elements[practitioner_id]


async def test_a_practitioner_one_cannot_write_to_is_shown_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    await login(client, ALICE)
    elements = _practitioner_elements((await client.get("/")).text)
    martin, bernard = await user(MARTIN), await user(BERNARD)
    # Dr Bernard has messaging off: shown, with a reason and no link to write.
    assert "/threads/new" not in elements[str(bernard.id)]
    assert "messagerie" in elements[str(bernard.id)].lower()
    # Dr Martin can be written to.
    assert f"/threads/new?practitioner_id={martin.id}" in elements[str(martin.id)]


async def test_inbox_lists_subjects(client: httpx.AsyncClient) -> None:
    await login(client, MARTIN)
    page = await client.get("/inbox")
    assert SUBJECT_RENEWAL in page.text
    assert SUBJECT_CERTIFICATE in page.text
    assert SUBJECT_RESULTS not in page.text


async def test_decline_reason_is_shown_to_the_patient(client: httpx.AsyncClient) -> None:
    token = await login(client, MARTIN)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    answer = await client.post(
        f"/threads/{thread.id}/decline",
        data={"reason": "Un certificat nécessite une consultation.", "csrf_token": token},
    )
    assert answer.status_code == 303
    client.cookies.clear()
    await login(client, ALICE)
    page = await client.get(f"/threads/{thread.id}")
    assert "Un certificat nécessite une consultation." in page.text


# --- health ---------------------------------------------------------------------------------


async def test_healthz_answers_json(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"


async def test_healthz_answers_503_when_the_database_does_not(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(server_db, "ping", broken)
    answer = await client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["status"] != "ok"


# --- masked content and assignment, as people see them ----------------------------------------


async def test_secretary_does_not_read_masked_content(client: httpx.AsyncClient) -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    await Practice.filter(id=thread.practice_id).update(mask_content_for_secretaries=True)
    token = await login(client, SECRETARIAT)
    page = await client.get(f"/threads/{thread.id}")
    # Who wrote and the subject are shown; what they wrote is not.
    assert page.status_code == 200
    assert SUBJECT_RENEWAL in page.text
    assert "mon traitement se termine" not in page.text
    assert "ordonnance sera disponible" not in page.text
    assert "data-message-id=" in page.text
    answer = await client.post(
        f"/threads/{thread.id}/messages", data={"body": "Je lis quand même", "csrf_token": token}
    )
    assert answer.status_code == 403
    assert "Je lis quand même" not in await Message.all().values_list("body", flat=True)


async def test_practitioner_does_see_content_when_secretaries_are_masked(
    client: httpx.AsyncClient,
) -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    await Practice.filter(id=thread.practice_id).update(mask_content_for_secretaries=True)
    await login(client, MARTIN)
    assert "mon traitement se termine" in (await client.get(f"/threads/{thread.id}")).text


async def test_assignment_opens_and_closes_a_thread_to_a_colleague(
    new_client: ClientFactory,
) -> None:
    secretary, bernard = await new_client(), await new_client()
    token = await login(secretary, SECRETARIAT)
    await login(bernard, BERNARD)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    assert (await bernard.get(f"/threads/{thread.id}")).status_code == 404

    bernard_id = str((await user(BERNARD)).id)
    answer = await secretary.post(
        f"/threads/{thread.id}/assign", data={"assignee_id": bernard_id, "csrf_token": token}
    )
    assert answer.status_code == 303
    assert (await bernard.get(f"/threads/{thread.id}")).status_code == 200
    assert SUBJECT_RENEWAL in (await bernard.get("/inbox?status=all")).text

    await secretary.post(
        f"/threads/{thread.id}/assign", data={"assignee_id": "none", "csrf_token": token}
    )
    assert (await bernard.get(f"/threads/{thread.id}")).status_code == 404
    assert SUBJECT_RENEWAL not in (await bernard.get("/inbox?status=all")).text


async def test_logout_is_not_reachable_by_a_link(client: httpx.AsyncClient) -> None:
    # A GET (an <img src>, a link in a message) must not end the session.
    await login(client, ALICE)
    assert (await client.get("/logout")).status_code == 405
    assert (await client.get("/")).status_code == 200
