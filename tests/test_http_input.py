"""Bad input answers a clear 4xx and changes nothing."""

from __future__ import annotations

import anyio
import httpx
import pytest
from core_support import (
    ALICE,
    BOB,
    MARTIN,
    PETIT,
    SECRETARIAT,
    SUBJECT_CERTIFICATE,
    SUBJECT_FLU,
    SUBJECT_RENEWAL,
    anonymous_token,
    login,
    snapshot,
    thread_by_subject,
    user,
)

from server.models import Message, MessagingSettings, Thread
from server.rules.quotas import DEFAULT_QUOTA

pytestmark = pytest.mark.anyio


async def _refused_without_change(
    client: httpx.AsyncClient, path: str, form: dict[str, str], status: int | None = None
) -> httpx.Response:
    before = await snapshot()
    answer = await client.post(path, data=form)
    if status is None:
        assert 400 <= answer.status_code < 500, (path, form, answer.status_code)
    else:
        assert answer.status_code == status, (path, form, answer.status_code)
    assert await snapshot() == before
    return answer


# --- new requests -----------------------------------------------------------------------------


async def _request_form(token: str, **changes: str | None) -> dict[str, str]:
    form = {
        "practitioner_id": str((await user(MARTIN)).id),
        "category": "question",
        "subject": "Une question",
        "body": "Bonjour docteur",
        "csrf_token": token,
    }
    for name, value in changes.items():
        if value is None:
            del form[name]
        else:
            form[name] = value
    return form


async def test_a_valid_request_is_accepted(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    answer = await client.post("/threads", data=await _request_form(token))
    assert answer.status_code == 303
    assert "Une question" in await Thread.all().values_list("subject", flat=True)


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"category": None}, 400),
        ({"subject": None}, 400),
        ({"body": None}, 400),
        ({"subject": "   "}, 400),
        ({"body": " \r\n "}, 400),
        ({"category": "urgent"}, 400),
        ({"category": "ADMIN"}, 400),
        ({"subject": "s" * 151}, 400),
        ({"body": "b" * 5001}, 413),
        ({"practitioner_id": None}, None),
        ({"practitioner_id": ""}, None),
        ({"practitioner_id": "abc"}, None),
        ({"practitioner_id": "-3"}, None),
        ({"practitioner_id": "1.5"}, None),
        ({"practitioner_id": "99999999999999999999"}, None),
        ({"practitioner_id": "987654"}, None),
        ({"practitioner_id": "²"}, None),
    ],
)
async def test_bad_new_request_is_refused_clearly(
    changes: dict[str, str | None], status: int | None, client: httpx.AsyncClient
) -> None:
    token = await login(client, ALICE)
    answer = await _refused_without_change(
        client, "/threads", await _request_form(token, **changes), status
    )
    # The form comes back with the reason.
    assert 'role="alert"' in answer.text
    assert 'action="/threads"' in answer.text


@pytest.mark.parametrize("target", [BOB, SECRETARIAT, PETIT])
async def test_request_to_someone_not_a_consulted_practitioner_is_refused(
    target: str, client: httpx.AsyncClient
) -> None:
    token = await login(client, ALICE)
    form = await _request_form(token, practitioner_id=str((await user(target)).id))
    await _refused_without_change(client, "/threads", form, 403)


async def test_the_body_limit_is_five_thousand_characters_exactly(
    client: httpx.AsyncClient,
) -> None:
    token = await login(client, ALICE)
    answer = await client.post("/threads", data=await _request_form(token, body="é" * 5000))
    assert answer.status_code == 303


# --- messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "status"),
    [({}, 400), ({"body": ""}, 400), ({"body": "  \n "}, 400), ({"body": "x" * 5001}, 413)],
)
async def test_bad_message_is_refused(
    form: dict[str, str], status: int, client: httpx.AsyncClient
) -> None:
    token = await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await _refused_without_change(
        client, f"/threads/{thread.id}/messages", {**form, "csrf_token": token}, status
    )
    assert 'role="alert"' in answer.text


async def test_too_long_message_keeps_the_draft_in_the_page(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    draft = "brouillon " * 501
    answer = await client.post(
        f"/threads/{thread.id}/messages", data={"body": draft, "csrf_token": token}
    )
    assert answer.status_code == 413
    assert draft.strip() in answer.text


async def test_htmx_refusal_is_a_fragment_for_the_error_slot(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await client.post(
        f"/threads/{thread.id}/messages",
        data={"body": "", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 400
    assert answer.headers["HX-Retarget"] == "#message-error"
    assert "<html" not in answer.text
    assert 'role="alert"' in answer.text


async def test_nul_bytes_and_crlf_are_cleaned(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await client.post(
        f"/threads/{thread.id}/messages",
        data={"body": "ligne\x00 1\r\nligne 2", "csrf_token": token},
    )
    assert answer.status_code == 303
    bodies = await Message.filter(thread_id=thread.id).values_list("body", flat=True)
    assert "ligne 1\nligne 2" in bodies


# --- ids in paths and forms -------------------------------------------------------------------


@pytest.mark.parametrize(
    "thread_path", ["abc", "-1", "0", "1.0", "99999999999999999999", "2147483648", "%00", "1%20"]
)
async def test_odd_thread_ids_are_not_found(thread_path: str, client: httpx.AsyncClient) -> None:
    token = await login(client, SECRETARIAT)
    assert (await client.get(f"/threads/{thread_path}")).status_code == 404
    for verb in ("messages", "accept", "decline", "close", "assign"):
        await _refused_without_change(
            client,
            f"/threads/{thread_path}/{verb}",
            {"body": "b", "reason": "r", "assignee_id": "self", "csrf_token": token},
            404,
        )


@pytest.mark.parametrize("value", ["abc", "", "0", "-1", "99999999999999999999"])
async def test_inbox_with_an_odd_thread_id_is_not_found(
    value: str, client: httpx.AsyncClient
) -> None:
    await login(client, MARTIN)
    assert (await client.get("/inbox", params={"thread": value})).status_code == 404


async def test_inbox_does_not_open_someone_elses_thread(client: httpx.AsyncClient) -> None:
    await login(client, MARTIN)
    flu = await thread_by_subject(SUBJECT_FLU)
    page = await client.get("/inbox", params={"thread": str(flu.id)})
    assert page.status_code == 404
    assert SUBJECT_FLU not in page.text


async def test_inbox_with_an_unknown_filter_is_a_bad_request(client: httpx.AsyncClient) -> None:
    await login(client, MARTIN)
    assert (await client.get("/inbox", params={"status": "deleted"})).status_code == 400


# --- staff decisions ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   ", "r" * 1001])
async def test_decline_without_a_usable_reason_is_refused(
    reason: str | None, client: httpx.AsyncClient
) -> None:
    token = await login(client, MARTIN)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    form = {"csrf_token": token} if reason is None else {"reason": reason, "csrf_token": token}
    answer = await _refused_without_change(client, f"/threads/{thread.id}/decline", form, 400)
    assert 'role="alert"' in answer.text


async def test_secretary_cannot_accept_a_medical_request(client: httpx.AsyncClient) -> None:
    alice_client_token = await login(client, ALICE)
    await client.post(
        "/threads",
        data={
            "practitioner_id": str((await user(MARTIN)).id),
            "category": "renewal",
            "subject": "Renouvellement",
            "body": "Bonjour",
            "csrf_token": alice_client_token,
        },
    )
    thread = await thread_by_subject("Renouvellement")
    client.cookies.clear()
    token = await login(client, SECRETARIAT)
    for verb, form in (("accept", {}), ("decline", {"reason": "Non"})):
        await _refused_without_change(
            client, f"/threads/{thread.id}/{verb}", {**form, "csrf_token": token}, 403
        )


@pytest.mark.parametrize("assignee", ["abc", "-1", "987654", "alice", "dr.petit", "²"])
async def test_assign_to_someone_outside_the_team_is_refused(
    assignee: str, client: httpx.AsyncClient
) -> None:
    ids = {"alice": str((await user(ALICE)).id), "dr.petit": str((await user(PETIT)).id)}
    token = await login(client, SECRETARIAT)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await _refused_without_change(
        client,
        f"/threads/{thread.id}/assign",
        {"assignee_id": ids.get(assignee, assignee), "csrf_token": token},
        400,
    )
    assert 'role="alert"' in answer.text


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"response_days": "0"},
        {"response_days": "31"},
        {"response_days": "abc"},
        {"response_days": ""},
        {"response_days": "²"},
        {"max_open_requests_per_patient": "0"},
        {"max_open_requests_per_patient": "21"},
        {"max_open_requests_per_patient": "-2"},
        {"away_message": "a" * 1001},
    ],
)
async def test_bad_settings_are_refused(changes: dict[str, str], client: httpx.AsyncClient) -> None:
    token = await login(client, MARTIN)
    form = {
        "messaging_enabled": "on",
        "accepting_requests": "on",
        "response_days": "3",
        "max_open_requests_per_patient": "5",
        "away_message": "",
        "csrf_token": token,
        **changes,
    }
    answer = await _refused_without_change(client, "/settings", form, 400)
    assert 'role="alert"' in answer.text


async def test_valid_settings_are_saved(client: httpx.AsyncClient) -> None:
    token = await login(client, MARTIN)
    answer = await client.post(
        "/settings",
        data={
            "accepting_requests": "on",
            "response_days": "4",
            "max_open_requests_per_patient": "3",
            "away_message": "En congé",
            "csrf_token": token,
        },
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/settings?saved=1")
    saved = await MessagingSettings.get(practitioner__email=MARTIN)
    assert not saved.messaging_enabled  # an unticked box is sent as nothing
    assert (saved.response_days, saved.max_open_requests_per_patient) == (4, 3)
    assert saved.away_message == "En congé"


# --- language ---------------------------------------------------------------------------------


async def test_unknown_language_is_refused(client: httpx.AsyncClient) -> None:
    token = await anonymous_token(client)
    answer = await client.post("/language", data={"locale": "xx", "csrf_token": token})
    assert answer.status_code == 400
    assert "colloque_lang" not in client.cookies


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", ""],
)
async def test_language_redirect_stays_on_the_site(target: str, client: httpx.AsyncClient) -> None:
    token = await anonymous_token(client)
    answer = await client.post(
        "/language", data={"locale": "en", "next": target, "csrf_token": token}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


async def test_parallel_posts_over_http_cannot_exceed_the_minute_quota(
    client: httpx.AsyncClient,
) -> None:
    token = await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    statuses: list[int] = []

    async def post(n: int) -> None:
        answer = await client.post(
            f"/threads/{thread.id}/messages", data={"body": f"Rafale {n}", "csrf_token": token}
        )
        statuses.append(answer.status_code)

    async with anyio.create_task_group() as group:
        for n in range(30):
            group.start_soon(post, n)
    accepted = statuses.count(303)
    assert accepted >= 10
    assert accepted <= DEFAULT_QUOTA.per_minute
    assert set(statuses) <= {303, 429}
    bodies = await Message.all().values_list("body", flat=True)
    assert sum(body.startswith("Rafale") for body in bodies) == accepted
