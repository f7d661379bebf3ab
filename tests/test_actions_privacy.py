"""Closing a patient's account: identity gone, messages kept for the medical record."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from core_support import (
    ALICE,
    MARTIN,
    PASSWORD,
    SECRETARIAT,
    SUBJECT_CERTIFICATE,
    SUBJECT_RENEWAL,
    anonymous_token,
    csrf_from,
    login,
    thread_by_subject,
    user,
)

from server.actions import privacy
from server.models import (
    AuditEvent,
    CareRelationship,
    Message,
    PasswordReset,
    ReadState,
    RecoveryCode,
    Session,
    StreamEvent,
    Thread,
    User,
)
from server.passwords import verify_password
from server.rules.refusal import Refused
from server.sessions import start_session
from server.streams import latest_event_id

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]


async def _alice_with_everything() -> User:
    """Alice with a second factor, recovery codes, a reset link and two sessions."""
    alice = await user(ALICE)
    now = datetime.now(UTC)
    await User.filter(id=alice.id).update(
        totp_secret="JBSWY3DPEHPK3PXP", totp_enabled_at=now, totp_last_step=42
    )
    await RecoveryCode.create(user=alice, code_hash="hash")
    await PasswordReset.create(user=alice, token_hash="t" * 64, expires_at=now)
    await start_session(alice)
    await start_session(alice)
    return await user(ALICE)


async def test_closing_anonymises_and_keeps_the_medical_record() -> None:
    alice = await _alice_with_everything()
    bodies_before = sorted(
        await Message.filter(thread__patient_id=alice.id).values_list("id", "body")
    )
    ended = await privacy.close_account(alice, PASSWORD)
    assert len(ended) == 2
    closed = await User.get(id=alice.id)
    assert closed.email == f"closed-{alice.id}@invalid"
    assert closed.display_name == "Patient anonymisé"
    assert closed.totp_secret is None and closed.totp_enabled_at is None
    assert closed.totp_last_step == 0
    assert not closed.is_active and closed.closed_at is not None
    assert not await verify_password(closed.password_hash, PASSWORD)
    for model in (Session, RecoveryCode, PasswordReset, ReadState):
        assert not await model.filter(user_id=alice.id).exists()
    assert not await CareRelationship.filter(patient_id=alice.id).exists()
    # The exchanges stay, word for word, attributed to the (anonymised) account.
    assert (
        sorted(await Message.filter(thread__patient_id=alice.id).values_list("id", "body"))
        == bodies_before
    )
    assert not await User.filter(email=ALICE).exists()


async def test_open_requests_are_closed_and_staff_are_told() -> None:
    alice = await user(ALICE)
    renewal = await thread_by_subject(SUBJECT_RENEWAL)
    certificate = await thread_by_subject(SUBJECT_CERTIFICATE)
    # The event log is not emptied between tests: look only at what this one adds.
    before = await latest_event_id()
    await privacy.close_account(alice, PASSWORD)
    for thread in (renewal, certificate):
        assert (await Thread.get(id=thread.id)).status == "closed"
        event = await StreamEvent.get(id__gt=before, thread_id=thread.id, kind="thread.status")
        assert event.data == {"status": "closed"}
        assert event.practice_id == thread.practice_id
        line = await AuditEvent.get(thread_id=thread.id, action="thread.closed")
        assert line.detail == {"status": "closed", "because": "account.closed"}
    assert await AuditEvent.filter(action="account.closed", actor_id=alice.id).exists()


async def test_a_wrong_password_changes_nothing() -> None:
    alice = await _alice_with_everything()
    with pytest.raises(Refused) as refused:
        await privacy.close_account(alice, "not-my-password")
    assert refused.value.refusal.status == 403
    again = await user(ALICE)
    assert (again.display_name, again.is_active, again.closed_at) == ("Alice Durand", True, None)
    assert await Session.filter(user_id=alice.id).count() == 2
    line = await AuditEvent.get(action="account.close")
    assert line.outcome == "denied"


@pytest.mark.parametrize("email", [MARTIN, SECRETARIAT])
async def test_staff_accounts_are_not_closed_this_way(email: str) -> None:
    staff = await user(email)
    with pytest.raises(Refused) as refused:
        await privacy.close_account(staff, PASSWORD)
    assert refused.value.refusal.status == 403
    assert (await user(email)).is_active


async def test_closing_over_http_ends_the_session(client: httpx.AsyncClient) -> None:
    await login(client, ALICE)
    page = await client.get("/account/close")
    assert page.status_code == 200
    assert 'name="password"' in page.text
    answer = await client.post(
        "/account/close", data={"password": PASSWORD, "csrf_token": csrf_from(page.text)}
    )
    assert answer.status_code == 200
    assert "Clear-Site-Data" in answer.headers
    assert await User.get_or_none(email=ALICE) is None
    # The cookie is gone, and the session with it: the next page asks to log in.
    assert (await client.get("/")).headers["location"] == "/login"


async def test_the_closed_account_cannot_log_in(client: httpx.AsyncClient) -> None:
    alice = await user(ALICE)
    await privacy.close_account(alice, PASSWORD)
    token = await anonymous_token(client)
    for email in (ALICE, f"closed-{alice.id}@invalid"):
        answer = await client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
        )
        assert answer.status_code == 401


async def test_closing_over_http_needs_csrf_and_password(client: httpx.AsyncClient) -> None:
    token = await login(client, ALICE)
    assert (await client.post("/account/close", data={"password": PASSWORD})).status_code == 403
    empty = await client.post("/account/close", data={"password": "", "csrf_token": token})
    assert empty.status_code == 400
    wrong = await client.post("/account/close", data={"password": "nope", "csrf_token": token})
    assert wrong.status_code == 403
    assert (await user(ALICE)).is_active


async def test_staff_are_told_why_over_http(client: httpx.AsyncClient) -> None:
    await User.filter(email=MARTIN).update(locale="en")
    token = await login(client, MARTIN)
    page = await client.get("/account/close")
    assert page.status_code == 200
    assert "practice administrator" in page.text
    answer = await client.post("/account/close", data={"password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 403
    assert "practice administrator" in answer.text
    assert (await user(MARTIN)).is_active
