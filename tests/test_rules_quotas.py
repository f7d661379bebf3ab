"""server.rules.quotas: per-patient sending limits. Pure."""

from __future__ import annotations

from server.rules.quotas import (
    DAY_LIMIT,
    DEFAULT_QUOTA,
    MINUTE_LIMIT,
    MessageQuota,
    check_message_quota,
)


def test_default_quota_meets_the_contract_floor() -> None:
    # Contract: a patient may send at least 10 messages a minute and 20 a day.
    assert DEFAULT_QUOTA.per_minute >= 10
    assert DEFAULT_QUOTA.per_day >= 20
    assert check_message_quota(9, 19) is None


def test_default_quota_has_limits_at_all() -> None:
    assert check_message_quota(10_000, 10_000) is not None


def test_minute_limit_applies_at_the_limit() -> None:
    quota = MessageQuota(per_minute=3, per_day=100)
    assert check_message_quota(2, 2, quota) is None
    assert check_message_quota(3, 3, quota) is MINUTE_LIMIT


def test_day_limit_applies_at_the_limit() -> None:
    quota = MessageQuota(per_minute=10, per_day=20)
    assert check_message_quota(0, 19, quota) is None
    assert check_message_quota(0, 20, quota) is DAY_LIMIT


def test_minute_limit_is_reported_before_day_limit() -> None:
    quota = MessageQuota(per_minute=1, per_day=1)
    assert check_message_quota(1, 1, quota) is MINUTE_LIMIT


def test_quota_refusals_answer_429() -> None:
    assert MINUTE_LIMIT.status == 429
    assert DAY_LIMIT.status == 429
    assert MINUTE_LIMIT.code == "rate_minute"
    assert DAY_LIMIT.code == "rate_day"
