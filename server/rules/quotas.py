"""Per-patient sending limits, so that no practice is flooded by one account."""

from __future__ import annotations

from dataclasses import dataclass

from server.rules.refusal import Refusal
from server.translatable import N_


@dataclass(frozen=True)
class MessageQuota:
    #: Contract floor: at least 10 a minute and 20 a day must be allowed.
    per_minute: int = 12
    per_day: int = 40


DEFAULT_QUOTA = MessageQuota()

MINUTE_LIMIT = Refusal(
    "rate_minute", N_("You are sending messages too quickly. Please wait a minute."), 429
)
DAY_LIMIT = Refusal(
    "rate_day",
    N_(
        "You have reached today's message limit. "
        "Your practice will answer the messages already sent."
    ),
    429,
)


def check_message_quota(
    sent_last_minute: int, sent_last_day: int, quota: MessageQuota = DEFAULT_QUOTA
) -> Refusal | None:
    """Return why one more patient message is refused now, or None when it is allowed."""
    if sent_last_minute >= quota.per_minute:
        return MINUTE_LIMIT
    if sent_last_day >= quota.per_day:
        return DAY_LIMIT
    return None
