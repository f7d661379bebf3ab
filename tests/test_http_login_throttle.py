"""Login throttling and rehashing, as a user or an attacker meets them over HTTP."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type
from core_support import ALICE, HOME, PASSWORD, ClientFactory, anonymous_token, user
from starlette.applications import Starlette

from server.models import AuditEvent, LoginThrottle, User
from server.passwords import verify_password
from server.rules.throttle import LOGIN_LIMITS

pytestmark = pytest.mark.anyio

UNKNOWN = "nobody@demo.colloque.test"
FREE = LOGIN_LIMITS.account.free_failures


async def _post_login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = await anonymous_token(client)
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )


async def _fail(client: httpx.AsyncClient, email: str, times: int) -> None:
    for _ in range(times):
        answer = await _post_login(client, email, "not-the-password")
        assert answer.status_code == 401


async def _fail_through_waits(client: httpx.AsyncClient, email: str, times: int) -> None:
    """Fail `times` times, sitting out each wait (by moving the clock, see below)."""
    failed = 0
    while failed < times:
        answer = await _post_login(client, email, "not-the-password")
        if answer.status_code == 429:
            await _let_time_pass(int(answer.headers["retry-after"]))
            continue
        assert answer.status_code == 401
        failed += 1


async def _let_time_pass(seconds: float) -> None:
    """Move every counter's last failure back, as if that long had passed (no sleeping)."""
    for row in await LoginThrottle.all():
        row.last_failure_at -= timedelta(seconds=seconds)
        await row.save(update_fields=["last_failure_at"])


async def test_after_five_failures_even_the_right_password_waits(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fail(client, ALICE, FREE)
    checked: list[str] = []

    async def spy(password_hash: str | None, password: str) -> bool:
        checked.append(password)
        return await verify_password(password_hash, password)

    monkeypatch.setattr("server.views.auth.verify_password", spy)
    answer = await _post_login(client, ALICE, PASSWORD)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "1"
    assert "Trop de tentatives" in answer.text
    assert "Vous pourrez réessayer dans 1 secondes" in answer.text or "1 seconde" in answer.text
    assert checked == [], "the password must not be checked during the wait"
    assert "session" not in answer.headers.get("set-cookie", "")


async def test_waits_grow_and_apply_to_unknown_emails_with_identical_answers(
    new_client: ClientFactory,
) -> None:
    known_client, unknown_client = await new_client(), await new_client()
    await _fail(known_client, ALICE, FREE)
    await _fail(unknown_client, UNKNOWN, FREE)
    known = await _post_login(known_client, ALICE, "guess")
    unknown = await _post_login(unknown_client, UNKNOWN, "guess")
    assert known.status_code == unknown.status_code == 429
    assert known.headers["retry-after"] == unknown.headers["retry-after"] == "1"
    # Same page apart from the email typed back in and each visitor's own CSRF token.
    known_page = known.text.replace(ALICE, "EMAIL").replace(
        await anonymous_token(known_client), "TOKEN"
    )
    unknown_page = unknown.text.replace(UNKNOWN, "EMAIL").replace(
        await anonymous_token(unknown_client), "TOKEN"
    )
    assert known_page == unknown_page

    # Each failure after the wait doubles the next wait.
    await _let_time_pass(1)
    assert (await _post_login(known_client, ALICE, "guess")).status_code == 401
    again = await _post_login(known_client, ALICE, "guess")
    assert again.status_code == 429
    assert again.headers["retry-after"] == "2"


async def test_the_real_user_logs_in_once_the_wait_is_over(client: httpx.AsyncClient) -> None:
    await _fail_through_waits(client, ALICE, FREE + 10)  # 2**10 s: capped at 15 minutes
    answer = await _post_login(client, ALICE, PASSWORD)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "900"
    assert "15 minutes" in answer.text
    await _let_time_pass(15 * 60)
    answer = await _post_login(client, ALICE, PASSWORD)
    assert answer.status_code == 303
    assert answer.headers["location"] == HOME[ALICE]
    # The account's counter is gone: a later typo costs nothing.
    await client.post("/logout", data={"csrf_token": await _landing_token(client)})
    assert (await _post_login(client, ALICE, "typo")).status_code == 401
    assert (await _post_login(client, ALICE, PASSWORD)).status_code == 303


async def _landing_token(client: httpx.AsyncClient) -> str:
    from core_support import csrf_from

    return csrf_from((await client.get(HOME[ALICE])).text)


async def test_one_address_guessing_across_accounts_is_slowed(app: Starlette) -> None:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as attacker:
        for number in range(LOGIN_LIMITS.address.free_failures):
            await _fail(attacker, f"victim-{number}@example.org", 1)
        answer = await _post_login(attacker, "one-more@example.org", "guess")
        assert answer.status_code == 429
    # Someone else, elsewhere, is not affected.
    transport = httpx.ASGITransport(app=app, client=("198.51.100.4", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        assert (await _post_login(other, ALICE, PASSWORD)).status_code == 303


async def test_throttled_attempts_are_audited(new_client: ClientFactory) -> None:
    known_client, unknown_client = await new_client(), await new_client()
    await _fail(known_client, ALICE, FREE)
    await _fail(unknown_client, UNKNOWN, FREE)
    await _post_login(known_client, ALICE, "guess")
    await _post_login(unknown_client, UNKNOWN, "guess")
    rows = (
        await AuditEvent.filter(action="login.throttled")
        .order_by("id")
        .values_list("actor_id", flat=True)
    )
    assert rows == [(await user(ALICE)).id, None]


async def test_no_log_line_holds_a_password_or_an_email(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the database's queries included
    await _fail(client, ALICE, FREE)
    await _post_login(client, ALICE, "Secret-Guess-4417")
    await _let_time_pass(1)
    await _post_login(client, ALICE, PASSWORD)
    assert caplog.records
    for record in caplog.records:
        line = record.getMessage()
        assert "not-the-password" not in line
        assert "Secret-Guess-4417" not in line
        assert PASSWORD not in line
        if record.levelno >= logging.INFO:
            # Query logs (DEBUG) show the email looked up; nothing louder names anyone.
            assert ALICE not in line


async def test_an_older_hash_is_upgraded_at_login(client: httpx.AsyncClient) -> None:
    # A hash made as an earlier version might have: argon2i, less memory, one pass.
    older = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.I)
    old_hash = older.hash(PASSWORD)
    await User.filter(email=ALICE).update(password_hash=old_hash)
    assert (await _post_login(client, ALICE, PASSWORD)).status_code == 303
    new_hash = (await user(ALICE)).password_hash
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await verify_password(new_hash, PASSWORD)


async def test_a_current_hash_is_left_alone(client: httpx.AsyncClient) -> None:
    before = (await user(ALICE)).password_hash
    assert before.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await _post_login(client, ALICE, PASSWORD)).status_code == 303
    assert (await user(ALICE)).password_hash == before
