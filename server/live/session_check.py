"""Streams outlive the request that opened them: they re-check their session now and then."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from server.models import Session
from server.sessions import IDLE_TIMEOUT

# Logout closes streams at once through the broker; this check catches expiry. Two minutes with
# jitter keeps 10,000 idle connections near 80 small queries a second.
CHECK_SECONDS = 120.0


def next_check_delay() -> float:
    return CHECK_SECONDS * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not security


async def session_alive(session_id: int) -> bool:
    return bool(await alive_sessions([session_id]))


async def alive_sessions(session_ids: list[int]) -> set[int]:
    """Which of these sessions are still valid (not logged out, not expired)."""
    now = datetime.now(UTC)
    return set(
        await Session.filter(
            id__in=session_ids, expires_at__gt=now, last_seen_at__gt=now - IDLE_TIMEOUT
        ).values_list("id", flat=True)
    )
