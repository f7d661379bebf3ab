"""What people type is shown as text: HTML and htmx attributes are escaped in pages and
fragments, so a message cannot run script or make the reader's browser send requests."""

from __future__ import annotations

import re

import httpx
import pytest
from core_support import (
    ALICE,
    MARTIN,
    SECRETARIAT,
    SUBJECT_CERTIFICATE,
    SUBJECT_RENEWAL,
    ClientFactory,
    login,
    thread_by_subject,
    user,
)

from server.models import Message, MessagingSettings, Thread

pytestmark = pytest.mark.anyio

PAYLOADS = (
    '<script>alert("colloque")</script>',
    "<div hx-get=/logout hx-trigger=load>piège</div>",
    '<img src=x onerror="alert(1)">',
    '"><svg onload=alert(2)>',
    "<a href='javascript:alert(3)'>lien</a>",
)
# What must never appear raw in a page once one of the payloads was typed.
RAW_MARKERS = ("<script>alert", "<div hx-get", "<img src=x", "<svg onload", "<a href='javascript")


def _assert_escaped(html: str, where: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in html, f"{marker!r} unescaped in {where}"
    assert "&lt;script&gt;" in html, f"payload missing from {where}"
    assert "&lt;div hx-get=/logout" in html, f"payload missing from {where}"


BODY = "\n".join(PAYLOADS)


async def test_message_bodies_are_escaped_in_thread_pages(new_client: ClientFactory) -> None:
    patient, doctor = await new_client(), await new_client()
    token = await login(patient, ALICE)
    await login(doctor, MARTIN)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await patient.post(
        f"/threads/{thread.id}/messages", data={"body": BODY, "csrf_token": token}
    )
    assert answer.status_code == 303
    for who, browser, path in (
        ("patient", patient, f"/threads/{thread.id}"),
        ("practitioner", doctor, f"/threads/{thread.id}"),
        ("practitioner inbox", doctor, f"/inbox?thread={thread.id}"),
    ):
        page = await browser.get(path)
        assert page.status_code == 200
        _assert_escaped(page.text, who)


async def test_htmx_post_returns_an_escaped_message_fragment(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await client.post(
        f"/threads/{thread.id}/messages",
        data={"body": BODY, "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 201
    message = await Message.get(thread_id=thread.id, seq=3)
    assert message.body == BODY
    assert re.search(rf'data-message-id="{message.id}"', answer.text)
    assert "<html" not in answer.text
    _assert_escaped(answer.text, "htmx fragment")


async def test_htmx_staff_answer_fragment_is_escaped(client: httpx.AsyncClient) -> None:
    token = await login(client, MARTIN)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await client.post(
        f"/threads/{thread.id}/messages",
        data={"body": BODY},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert answer.status_code == 201
    assert "data-message-id=" in answer.text
    _assert_escaped(answer.text, "staff htmx fragment")


async def test_subjects_are_escaped_on_every_list(new_client: ClientFactory) -> None:
    patient, doctor, secretary = await new_client(), await new_client(), await new_client()
    token = await login(patient, ALICE)
    subject = '<script>alert("s")</script><div hx-get=/logout>'
    answer = await patient.post(
        "/threads",
        data={
            "practitioner_id": str((await user(MARTIN)).id),
            "category": "admin",
            "subject": subject,
            "body": "Bonjour",
            "csrf_token": token,
        },
    )
    assert answer.status_code == 303
    thread = await thread_by_subject(subject)
    await login(doctor, MARTIN)
    await login(secretary, SECRETARIAT)
    for who, browser, path in (
        ("patient home", patient, "/"),
        ("patient thread", patient, f"/threads/{thread.id}"),
        ("inbox", doctor, "/inbox"),
        ("queue", secretary, "/queue"),
        ("secretary thread", secretary, f"/threads/{thread.id}"),
    ):
        page = await browser.get(path)
        assert page.status_code == 200, who
        assert "<script>alert" not in page.text, who
        assert "<div hx-get" not in page.text, who
        assert "&lt;script&gt;alert" in page.text, who


async def test_decline_reason_is_escaped(new_client: ClientFactory) -> None:
    doctor, patient = await new_client(), await new_client()
    token = await login(doctor, MARTIN)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    answer = await doctor.post(
        f"/threads/{thread.id}/decline", data={"reason": BODY, "csrf_token": token}
    )
    assert answer.status_code == 303
    await login(patient, ALICE)
    _assert_escaped((await patient.get(f"/threads/{thread.id}")).text, "declined thread")


async def test_away_message_is_escaped(new_client: ClientFactory) -> None:
    await MessagingSettings.filter(practitioner__email=MARTIN).update(away_message=BODY)
    patient = await new_client()
    token = await login(patient, ALICE)
    _assert_escaped((await patient.get("/threads/new")).text, "new request page")
    answer = await patient.post(
        "/threads",
        data={
            "practitioner_id": str((await user(MARTIN)).id),
            "category": "question",
            "subject": "Question",
            "body": "Bonjour",
            "csrf_token": token,
        },
    )
    assert answer.status_code == 303
    _assert_escaped((await patient.get(answer.headers["location"])).text, "away reply")


async def test_refused_draft_is_escaped(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    draft = BODY + "x" * 5000
    answer = await client.post(
        f"/threads/{thread.id}/messages", data={"body": draft, "csrf_token": token}
    )
    assert answer.status_code == 413
    _assert_escaped(answer.text, "refused draft")


async def test_htmx_decisions_answer_with_a_fragment(client: httpx.AsyncClient) -> None:
    token = await login(client, MARTIN)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    answer = await client.post(
        f"/threads/{thread.id}/accept",
        data={"csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert "<html" not in answer.text
    assert f'data-thread-id="{thread.id}"' in answer.text
    assert (await Thread.get(id=thread.id)).status == "open"


async def test_the_requested_path_is_escaped_in_error_pages(client: httpx.AsyncClient) -> None:
    # Every page echoes its path in the language form; a crafted link must not inject markup.
    answer = await client.get(
        '/"><script>alert(1)</script><div hx-get=/logout>', headers={"accept": "text/html"}
    )
    assert answer.status_code == 404
    assert "<script>alert(1)" not in answer.text
    assert "<div hx-get" not in answer.text
    assert "&lt;script&gt;alert(1)" in answer.text  # echoed, as text


async def test_the_email_typed_back_into_the_login_form_is_escaped(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    answer = await client.post(
        "/login",
        data={
            "email": '"><script>alert(1)</script>@x.test',
            "password": "x",
            "csrf_token": token.group(1),
        },
    )
    assert answer.status_code == 401
    assert "<script>alert(1)" not in answer.text
    assert "&lt;script&gt;alert(1)" in answer.text
