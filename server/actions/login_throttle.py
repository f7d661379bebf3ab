"""Failure counters per account and per address, stored in `login_throttle`.

Keys are keyed hashes (HMAC with SECRET_KEY) of the normalised email or IP address: the table
tells nobody who tried to log in from where. Unknown emails get counters like known ones, so a
throttled answer reveals nothing about which accounts exist.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from server.actions import audit
from server.models import LoginThrottle, User
from server.rules.throttle import (
    LOGIN_LIMITS,
    Counter,
    Limits,
    ThrottlePolicy,
    after_failure,
    retry_after_seconds,
    wait_before_attempt,
)

# Longer than any counter lives (largest wait plus the quiet spell), whatever the policy.
_KEEP_ROWS = timedelta(hours=1)
# Writers racing on a new or forgotten counter retry; each round lets at least one through.
_WRITE_ATTEMPTS = 10


@dataclass(frozen=True)
class ThrottleKeys:
    account: str
    address: str


def _keyed_hash(secret_key: str, label: str, value: str) -> str:
    return hmac.new(secret_key.encode(), f"{label}:{value}".encode(), hashlib.sha256).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def throttle_keys(
    secret_key: str, email: str, address: str | None, purpose: str = "login"
) -> ThrottleKeys:
    """The counters an attempt for `email` from `address` counts against.

    `purpose` keeps separate counters for logins ("login") and reset requests ("reset").
    """
    prefix = "" if purpose == "login" else f"{purpose}-"
    return ThrottleKeys(
        account=f"{prefix}account:"
        + _keyed_hash(secret_key, f"{purpose}:account", normalise_email(email)),
        address=f"{prefix}address:"
        + _keyed_hash(secret_key, f"{purpose}:address", address or "unknown"),
    )


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


async def _counters(keys: ThrottleKeys) -> dict[str, Counter]:
    rows = await LoginThrottle.filter(key__in=[keys.account, keys.address])
    return {row.key: Counter(row.failures, row.last_failure_at) for row in rows}


async def wait_for(keys: ThrottleKeys, limits: Limits, now: datetime | None = None) -> timedelta:
    """How long before an attempt under `keys` may be checked; zero when it may be now."""
    now = _now(now)
    counters = await _counters(keys)
    return max(
        wait_before_attempt(limits.account, counters.get(keys.account), now),
        wait_before_attempt(limits.address, counters.get(keys.address), now),
    )


async def _count_failure(key: str, policy: ThrottlePolicy, now: datetime) -> None:
    # A counter whose last failure is more recent than the quiet spell is live whatever its
    # count (see live_failures): one atomic increment, so concurrent failures all count.
    recent = now - policy.forget_after
    if await LoginThrottle.filter(key=key, last_failure_at__gt=recent).update(
        failures=F("failures") + 1, last_failure_at=now
    ):
        return
    # A new or possibly forgotten counter: compare-and-set on the count, which behaves the same
    # on SQLite and PostgreSQL without row locks; a writer that lost the race tries again.
    for _ in range(_WRITE_ATTEMPTS):
        row = await LoginThrottle.get_or_none(key=key)
        if row is None:
            try:
                await LoginThrottle.create(key=key, failures=1, last_failure_at=now)
                return
            except IntegrityError:
                continue
        counter = after_failure(policy, Counter(row.failures, row.last_failure_at), now)
        changed = await LoginThrottle.filter(id=row.id, failures=row.failures).update(
            failures=counter.failures, last_failure_at=counter.last_failure_at
        )
        if changed:
            return


async def record_failure(keys: ThrottleKeys, limits: Limits, now: datetime | None = None) -> None:
    """Count one failure (or one reset request) against the account and the address."""
    now = _now(now)
    await _count_failure(keys.account, limits.account, now)
    await _count_failure(keys.address, limits.address, now)


async def clear_account(keys: ThrottleKeys) -> None:
    """Forget the account's failures (after a login or a password reset that succeeded).

    The address counter stays: one valid account must not buy its holder fresh guesses at others.
    """
    await LoginThrottle.filter(key=keys.account).delete()


async def check_login(keys: ThrottleKeys, email: str, now: datetime | None = None) -> int:
    """Seconds to wait before this login attempt may be checked, 0 when it may be now.

    A refused attempt is audited, against the account when the email is one of ours; the
    lookup is made for every refused attempt so that unknown emails take as long.
    """
    wait = await wait_for(keys, LOGIN_LIMITS, now)
    if wait <= timedelta(0):
        return 0
    seconds = retry_after_seconds(wait)
    actor_id = await User.filter(email=normalise_email(email)).first().values_list("id", flat=True)
    await audit.record(
        int(actor_id) if actor_id is not None else None,
        "login.throttled",
        detail={"retry_after": seconds},
        outcome=audit.DENIED,
    )
    return seconds


async def purge_forgotten(now: datetime | None = None) -> int:
    """Delete counters no policy still counts; returns how many went."""
    return await LoginThrottle.filter(last_failure_at__lt=_now(now) - _KEEP_ROWS).delete()
