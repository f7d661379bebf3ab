"""Growing waits after failures: the rules alone, with the clock passed in (no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.rules.throttle import (
    LOGIN_LIMITS,
    RESET_REQUEST_LIMITS,
    Counter,
    ThrottlePolicy,
    after_failure,
    live_failures,
    retry_after_seconds,
    wait_before_attempt,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ACCOUNT = LOGIN_LIMITS.account


def _fail(policy: ThrottlePolicy, times: int, start: datetime = T0) -> Counter | None:
    counter = None
    for _ in range(times):
        counter = after_failure(policy, counter, start)
    return counter


def test_five_failures_cost_nothing_then_waits_double() -> None:
    assert wait_before_attempt(ACCOUNT, _fail(ACCOUNT, 4), T0) == timedelta(0)
    waits = [wait_before_attempt(ACCOUNT, _fail(ACCOUNT, n), T0) for n in range(5, 10)]
    assert waits == [timedelta(seconds=s) for s in (1, 2, 4, 8, 16)]


def test_the_wait_is_capped_at_15_minutes() -> None:
    assert wait_before_attempt(ACCOUNT, _fail(ACCOUNT, 40), T0) == timedelta(minutes=15)
    assert ACCOUNT.wait_after(10**9) == timedelta(minutes=15)


def test_the_wait_runs_from_the_last_failure() -> None:
    counter = _fail(ACCOUNT, 8)  # 8 s
    assert wait_before_attempt(ACCOUNT, counter, T0 + timedelta(seconds=3)) == timedelta(seconds=5)
    assert wait_before_attempt(ACCOUNT, counter, T0 + timedelta(seconds=8)) == timedelta(0)


def test_the_real_user_gets_in_after_the_longest_wait() -> None:
    counter = _fail(ACCOUNT, 1000)
    assert wait_before_attempt(ACCOUNT, counter, T0 + timedelta(minutes=15)) == timedelta(0)


def test_a_counter_is_forgotten_after_a_quiet_spell() -> None:
    counter = _fail(ACCOUNT, 7)  # 4 s wait, then 15 quiet minutes
    assert live_failures(ACCOUNT, counter, T0 + timedelta(minutes=15)) == 7
    later = T0 + timedelta(minutes=15, seconds=4)
    assert live_failures(ACCOUNT, counter, later) == 0
    assert after_failure(ACCOUNT, counter, later) == Counter(1, later)


def test_waiting_exactly_the_cap_does_not_wipe_the_count() -> None:
    # Otherwise an attacker could pace guesses at the cap and get free ones after each.
    counter = _fail(ACCOUNT, 20)
    assert after_failure(ACCOUNT, counter, T0 + timedelta(minutes=15)).failures == 21


def test_addresses_get_more_free_failures_than_accounts() -> None:
    assert LOGIN_LIMITS.address.free_failures > LOGIN_LIMITS.account.free_failures
    assert wait_before_attempt(LOGIN_LIMITS.address, _fail(LOGIN_LIMITS.address, 20), T0) == (
        timedelta(0)
    )


def test_reset_requests_wait_minutes_after_three() -> None:
    policy = RESET_REQUEST_LIMITS.account
    assert wait_before_attempt(policy, _fail(policy, 2), T0) == timedelta(0)
    assert wait_before_attempt(policy, _fail(policy, 3), T0) == timedelta(minutes=1)
    assert wait_before_attempt(policy, _fail(policy, 4), T0) == timedelta(minutes=2)


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert retry_after_seconds(timedelta(seconds=0.2)) == 1
    assert retry_after_seconds(timedelta(seconds=4.01)) == 5
    assert retry_after_seconds(timedelta(minutes=15)) == 900
