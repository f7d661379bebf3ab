"""The audit trail records who did what to which thread, and never any message content."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta

import httpx
import pytest
from core_support import (
    ALICE,
    BOB,
    MARTIN,
    SECRETARIAT,
    SUBJECT_RENEWAL,
    anonymous_token,
    login,
    thread_by_subject,
    user,
)
from starlette.applications import Starlette
from tortoise import connections

from server.actions import audit, messages, practitioners, threads
from server.models import AuditEvent, Thread
from server.settings import DEVELOPMENT_SECRET_KEY

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]

SECRET_SUBJECT = "Sujet-confidentiel-QX71"
SECRET_BODY = "Corps-confidentiel-ZK93 : résultats de sérologie"
SECRET_ANSWER = "Réponse-confidentielle-WV28"
SECRET_REASON = "Motif-confidentiel-LM45"
SECRET_AWAY = "Absence-confidentielle-HP06"
SECRETS = (SECRET_SUBJECT, SECRET_BODY, SECRET_ANSWER, SECRET_REASON, SECRET_AWAY)


async def _whole_audit_table() -> str:
    """Every column of every audit row, as the database stores it."""
    rows = await connections.get("default").execute_query_dict("SELECT * FROM audit_event")
    return repr(rows)


async def _run_a_conversation() -> int:
    alice, martin, secretary = await user(ALICE), await user(MARTIN), await user(SECRETARIAT)
    settings = await practitioners.settings_for(martin)
    await practitioners.update_settings(
        martin,
        messaging_enabled=True,
        accepting_requests=True,
        away_message=SECRET_AWAY,
        response_days=settings.response_days,
        max_open_requests_per_patient=settings.max_open_requests_per_patient,
    )
    opened = await threads.open_request(alice, martin.id, "results", SECRET_SUBJECT, SECRET_BODY)
    thread = await thread_by_subject(SECRET_SUBJECT)
    await threads.accept(martin, thread)
    await messages.post_message(martin, thread, SECRET_ANSWER)
    await messages.mark_read(alice, await thread_by_subject(SECRET_SUBJECT))
    await threads.assign(secretary, thread, martin.id)
    await threads.close(martin, thread)
    declined = await thread_by_subject("Certificat pour la piscine")
    await threads.decline(martin, declined, SECRET_REASON)
    return opened.id


async def test_actions_leave_an_audit_trail() -> None:
    thread_id = await _run_a_conversation()
    alice, martin = await user(ALICE), await user(MARTIN)
    trail = (
        await AuditEvent.filter(thread_id=thread_id)
        .order_by("id")
        .values_list("actor_id", "action")
    )
    assert trail == [
        (alice.id, "thread.opened"),
        (martin.id, "thread.accepted"),
        (martin.id, "message.posted"),
        (alice.id, "thread.read"),
        ((await user(SECRETARIAT)).id, "thread.assigned"),
        (martin.id, "thread.closed"),
    ]
    assert await AuditEvent.filter(action="thread.declined", actor_id=martin.id).exists()
    assert await AuditEvent.filter(action="settings.updated", actor_id=martin.id).exists()


async def test_audit_rows_never_hold_message_content() -> None:
    await _run_a_conversation()
    table = await _whole_audit_table()
    assert "thread.opened" in table  # the query did read the rows
    for secret in SECRETS:
        assert secret not in table
    # Nor a recognisable part of any.
    for marker in ("QX71", "ZK93", "sérologie", "WV28", "LM45", "HP06"):
        assert marker not in table


async def test_login_attempts_are_audited_without_email_or_password(
    client: httpx.AsyncClient,
) -> None:
    token = await anonymous_token(client)
    wrong = await client.post(
        "/login",
        data={
            "email": "inconnu-RT55@example.test",
            "password": "mot-de-passe-YB12",
            "csrf_token": token,
        },
    )
    assert wrong.status_code == 401
    await login(client, ALICE)
    assert await AuditEvent.filter(action="login.failed", actor_id=None).count() == 1
    alice = await user(ALICE)
    assert await AuditEvent.filter(action="login.succeeded", actor_id=alice.id).exists()
    table = await _whole_audit_table()
    for secret in ("inconnu-RT55", "mot-de-passe-YB12", "colloque-demo"):
        assert secret not in table


# --- Who, about whom, on what, with what outcome, for which practice -------------------------


async def test_thread_lines_name_the_practice_the_object_and_a_pseudonym() -> None:
    thread_id = await _run_a_conversation()
    alice = await user(ALICE)
    thread = await Thread.get(id=thread_id)
    lines = await AuditEvent.filter(thread_id=thread_id)
    assert lines
    for line in lines:
        assert line.practice_id == thread.practice_id
        assert line.object == f"thread:{thread_id}"
        assert line.subject == audit.pseudonym(alice.id)
        assert line.outcome == "ok"
        assert line.created_at.utcoffset() == timedelta(0)


async def test_the_pseudonym_is_keyed_stable_and_says_nothing_of_the_id() -> None:
    first, again, other = audit.pseudonym(3), audit.pseudonym(3), audit.pseudonym(4)
    assert first == again != other
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    expected = hmac.new(
        DEVELOPMENT_SECRET_KEY.encode(), b"audit-subject:3", hashlib.sha256
    ).hexdigest()[:32]
    assert first == expected
    # Without the key, hashing the id does not give it.
    assert first != hashlib.sha256(b"3").hexdigest()[:32]


async def test_someone_elses_thread_is_refused_and_audited(client: httpx.AsyncClient) -> None:
    await login(client, BOB)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await client.get(f"/threads/{thread.id}")
    assert answer.status_code == 404
    bob, alice = await user(BOB), await user(ALICE)
    line = await AuditEvent.get(action="thread.denied")
    assert (line.actor_id, line.outcome, line.object) == (bob.id, "denied", f"thread:{thread.id}")
    # Filed under the practice whose data was asked for, about the patient concerned.
    assert line.practice_id == thread.practice_id
    assert line.subject == audit.pseudonym(alice.id)


async def test_a_thread_that_does_not_exist_is_audited_too(client: httpx.AsyncClient) -> None:
    await login(client, MARTIN)
    assert (await client.get("/threads/99999")).status_code == 404
    line = await AuditEvent.get(action="thread.denied")
    martin = await user(MARTIN)
    assert (line.actor_id, line.object, line.outcome) == (martin.id, "thread:99999", "denied")
    assert line.practice_id == martin.practice_id


async def test_a_role_kept_out_is_audited(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    assert (await client.get("/inbox")).status_code == 404
    line = await AuditEvent.get(action="role.denied")
    assert (line.actor_id, line.object, line.outcome) == (
        (await user(ALICE)).id,
        "route:/inbox",
        "denied",
    )


async def test_a_csrf_failure_is_audited(client: httpx.AsyncClient) -> None:
    await login(client, MARTIN)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    answer = await client.post(f"/threads/{thread.id}/close", data={"csrf_token": "forged"})
    assert answer.status_code == 403
    line = await AuditEvent.get(action="csrf.denied")
    martin = await user(MARTIN)
    assert (line.actor_id, line.outcome, line.practice_id) == (
        martin.id,
        "denied",
        martin.practice_id,
    )
    assert line.object == f"route:/threads/{thread.id}/close"
    assert (await Thread.get(id=thread.id)).status == "open"


async def _websocket_handshake(app: Starlette, headers: list[tuple[bytes, bytes]]) -> list[dict]:
    """Drive /ws as a server sees it; returns what the server sent."""
    sent: list[dict] = []
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
    }
    messages = iter([{"type": "websocket.connect"}])

    async def receive() -> dict:
        return next(messages, {"type": "websocket.disconnect", "code": 1000})

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_websocket_refused_at_the_handshake_is_audited(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await login(client, MARTIN)
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    sent = await _websocket_handshake(
        app, [(b"origin", b"https://elsewhere.example"), (b"cookie", cookie.encode())]
    )
    assert [message["type"] for message in sent] == ["websocket.close"]
    line = await AuditEvent.get(action="ws.denied")
    assert (line.actor_id, line.outcome, line.object) == (
        (await user(MARTIN)).id,
        "denied",
        "route:/ws",
    )
    assert line.detail == {"reason": "origin"}

    sent = await _websocket_handshake(app, [(b"origin", b"http://testserver")])
    assert [message["type"] for message in sent] == ["websocket.close"]
    anonymous = await AuditEvent.filter(action="ws.denied", actor_id=None).get()
    assert anonymous.detail == {"reason": "session"}


async def test_login_lines_say_whose_account_and_what_happened(client: httpx.AsyncClient) -> None:
    token = await anonymous_token(client)
    wrong = await client.post(
        "/login", data={"email": ALICE, "password": "pas-le-bon", "csrf_token": token}
    )
    assert wrong.status_code == 401
    token = await login(client, ALICE)
    assert (await client.post("/logout", data={"csrf_token": token})).status_code == 303
    await login(client, MARTIN)
    alice, martin = await user(ALICE), await user(MARTIN)
    lines = await AuditEvent.filter(action__startswith="log").order_by("id")
    assert [(line.actor_id, line.action, line.outcome) for line in lines] == [
        (alice.id, "login.failed", "denied"),
        (alice.id, "login.succeeded", "ok"),
        (alice.id, "logout", "ok"),
        (martin.id, "login.succeeded", "ok"),
    ]
    assert {line.object for line in lines[:3]} == {f"account:{alice.id}"}
    # A patient's own lines name them by pseudonym; a practice member's carry their practice.
    assert {line.subject for line in lines[:3]} == {audit.pseudonym(alice.id)}
    assert (lines[3].subject, lines[3].practice_id) == ("", martin.practice_id)
