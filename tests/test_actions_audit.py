"""The audit trail records who did what to which thread, and never any message content."""

from __future__ import annotations

import httpx
import pytest
from core_support import (
    ALICE,
    MARTIN,
    SECRETARIAT,
    anonymous_token,
    login,
    thread_by_subject,
    user,
)
from tortoise import connections

from server.actions import messages, practitioners, threads
from server.models import AuditEvent

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
