"""Growing waits after repeated failures (logins, reset requests): pure, the time is passed in.

A counter holds how many failures came in a row and when the last one was. A few are free; each
one after that doubles the wait before the next attempt may even be checked, up to a cap, so
guessing becomes slow while a person who mistyped a few times never notices. A counter is
forgotten after a quiet spell longer than the wait it imposed: nobody is locked out for good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ThrottlePolicy:
    #: Failures in a row that cost nothing.
    free_failures: int
    #: Wait after the first failure past the free ones; it doubles with each further failure.
    first_wait: timedelta = timedelta(seconds=1)
    #: Longest wait: long enough to make guessing hopeless, short enough for the real user.
    max_wait: timedelta = timedelta(minutes=15)
    #: Quiet time, after the wait a counter imposes, that wipes it.
    forget_after: timedelta = timedelta(minutes=15)

    def wait_after(self, failures: int) -> timedelta:
        """The wait imposed after `failures` failures in a row."""
        extra = failures - self.free_failures
        if extra < 0:
            return timedelta(0)
        # Past 2**20 seconds every wait is capped anyway; the bound keeps the number small.
        return min(self.first_wait * 2 ** min(extra, 20), self.max_wait)


@dataclass(frozen=True)
class Limits:
    """One policy per account (email) and a looser one per address, which people may share."""

    account: ThrottlePolicy
    address: ThrottlePolicy


# OWASP Authentication Cheat Sheet: throttle per account and per source. Five tries cover
# mistyping; a practice or a family behind one shared address gets ten times as many.
LOGIN_LIMITS = Limits(account=ThrottlePolicy(5), address=ThrottlePolicy(50))
# Each request sends an email: three come at once, then minutes apart, so nobody's mailbox
# can be flooded through us.
RESET_REQUEST_LIMITS = Limits(
    account=ThrottlePolicy(3, first_wait=timedelta(minutes=1)),
    address=ThrottlePolicy(20),
)


@dataclass(frozen=True)
class Counter:
    failures: int
    last_failure_at: datetime


def live_failures(policy: ThrottlePolicy, counter: Counter | None, now: datetime) -> int:
    """The failures that still count at `now` (0 once the counter has been forgotten)."""
    if counter is None:
        return 0
    forgotten_at = (
        counter.last_failure_at + policy.wait_after(counter.failures) + policy.forget_after
    )
    return 0 if now >= forgotten_at else counter.failures


def wait_before_attempt(
    policy: ThrottlePolicy, counter: Counter | None, now: datetime
) -> timedelta:
    """How long until the next attempt may be checked; zero when it may be now."""
    failures = live_failures(policy, counter, now)
    if counter is None or failures == 0:
        return timedelta(0)
    return max(counter.last_failure_at + policy.wait_after(failures) - now, timedelta(0))


def after_failure(policy: ThrottlePolicy, counter: Counter | None, now: datetime) -> Counter:
    """The counter once one more failure happened at `now`."""
    return Counter(live_failures(policy, counter, now) + 1, now)


def retry_after_seconds(wait: timedelta) -> int:
    """The wait as a Retry-After value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait.total_seconds()))
