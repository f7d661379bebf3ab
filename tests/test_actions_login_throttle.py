"""Failure counters in the database: keyed hashes only, concurrent failures all count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest
from core_support import ALICE, user

from server.actions import login_throttle
from server.models import AuditEvent, LoginThrottle
from server.rules.throttle import LOGIN_LIMITS, RESET_REQUEST_LIMITS

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]

SECRET = "test-secret-key-for-the-throttle"
ADDRESS = "203.0.113.7"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _keys(email: str = ALICE, address: str | None = ADDRESS) -> login_throttle.ThrottleKeys:
    return login_throttle.throttle_keys(SECRET, email, address)


async def _fail(keys: login_throttle.ThrottleKeys, times: int, at: datetime = T0) -> None:
    for _ in range(times):
        await login_throttle.record_failure(keys, LOGIN_LIMITS, at)


async def test_the_table_holds_neither_emails_nor_addresses() -> None:
    await _fail(_keys(), 3)
    stored = repr(await LoginThrottle.all().values())
    assert ALICE not in stored
    assert ADDRESS not in stored
    assert sorted(await LoginThrottle.all().values_list("key", "failures")) == sorted(
        [(_keys().account, 3), (_keys().address, 3)]
    )


async def test_keys_depend_on_the_secret_and_the_normalised_email() -> None:
    assert _keys(" Alice@Demo.Colloque.TEST ") == _keys()
    assert login_throttle.throttle_keys("another-secret", ALICE, ADDRESS) != _keys()
    reset = login_throttle.throttle_keys(SECRET, ALICE, ADDRESS, purpose="reset")
    assert {reset.account, reset.address}.isdisjoint({_keys().account, _keys().address})
    assert _keys().account.startswith("account:") and _keys().address.startswith("address:")
    assert len(_keys().account) <= 100


async def test_the_sixth_attempt_waits_and_the_wait_ends() -> None:
    keys = _keys()
    await _fail(keys, 5)
    assert await login_throttle.wait_for(keys, LOGIN_LIMITS, T0) == timedelta(seconds=1)
    assert await login_throttle.wait_for(keys, LOGIN_LIMITS, T0 + timedelta(seconds=1)) == (
        timedelta(0)
    )


async def test_an_address_trying_many_accounts_is_slowed_too() -> None:
    for number in range(LOGIN_LIMITS.address.free_failures):
        await _fail(_keys(f"someone-{number}@example.org"), 1)
    fresh_account = _keys("nobody-yet@example.org")
    assert await login_throttle.wait_for(fresh_account, LOGIN_LIMITS, T0) == timedelta(seconds=1)
    elsewhere = _keys("nobody-yet@example.org", "198.51.100.20")
    assert await login_throttle.wait_for(elsewhere, LOGIN_LIMITS, T0) == timedelta(0)


async def test_concurrent_failures_all_count() -> None:
    keys = _keys()
    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(login_throttle.record_failure, keys, LOGIN_LIMITS, T0)
    assert await LoginThrottle.get(key=keys.account).values_list("failures", flat=True) == 8


async def test_clearing_the_account_keeps_the_address_counter() -> None:
    keys = _keys()
    await _fail(keys, 7)
    await login_throttle.clear_account(keys)
    assert await LoginThrottle.filter(key=keys.account).count() == 0
    assert await LoginThrottle.get(key=keys.address).values_list("failures", flat=True) == 7


async def test_check_login_audits_refusals_for_known_and_unknown_emails() -> None:
    known, unknown = _keys(), _keys("nobody@demo.colloque.test")
    await _fail(known, 6)
    await _fail(unknown, 6)
    assert await login_throttle.check_login(known, ALICE, T0) == 2
    assert await login_throttle.check_login(unknown, "nobody@demo.colloque.test", T0) == 2
    rows = (
        await AuditEvent.filter(action="login.throttled")
        .order_by("id")
        .values_list("actor_id", "detail")
    )
    assert rows == [((await user(ALICE)).id, {"retry_after": 2}), (None, {"retry_after": 2})]
    # No refusal, no line.
    assert await login_throttle.check_login(_keys("calm@example.org", "192.0.2.1"), ALICE, T0) == 0
    assert await AuditEvent.filter(action="login.throttled").count() == 2


async def test_reset_requests_count_apart_from_logins() -> None:
    reset = login_throttle.throttle_keys(SECRET, ALICE, ADDRESS, purpose="reset")
    for _ in range(3):
        await login_throttle.record_failure(reset, RESET_REQUEST_LIMITS, T0)
    assert await login_throttle.wait_for(reset, RESET_REQUEST_LIMITS, T0) == timedelta(minutes=1)
    assert await login_throttle.wait_for(_keys(), LOGIN_LIMITS, T0) == timedelta(0)


async def test_forgotten_counters_are_purged() -> None:
    await _fail(_keys(), 9, T0)
    await _fail(_keys("recent@example.org", "192.0.2.9"), 2, T0 + timedelta(minutes=50))
    assert await login_throttle.purge_forgotten(T0 + timedelta(minutes=59)) == 0
    assert await login_throttle.purge_forgotten(T0 + timedelta(minutes=61)) == 2
    assert await LoginThrottle.all().count() == 2
