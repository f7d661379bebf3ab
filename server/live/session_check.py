"""Streams outlive the request that opened them: the hub re-checks their sessions now and then."""

from __future__ import annotations

from datetime import UTC, datetime

from server.models import Session
from server.sessions import IDLE_TIMEOUT

# Logout closes streams at once through the broker; this check catches expiry (idle or
# absolute), so an expired session's streams end within this delay. One batch of queries for all
# of a process's streams: about 20 indexed lookups for 10,000 streams.
CHECK_SECONDS = 15.0
# Ids per query: well under SQLite's limit on bound parameters.
_CHUNK = 500


async def alive_sessions(session_ids: list[int]) -> set[int]:
    """Which of these sessions are still valid (not logged out, not expired)."""
    now = datetime.now(UTC)
    alive: set[int] = set()
    for start in range(0, len(session_ids), _CHUNK):
        alive.update(
            await Session.filter(
                id__in=session_ids[start : start + _CHUNK],
                expires_at__gt=now,
                last_seen_at__gt=now - IDLE_TIMEOUT,
            ).values_list("id", flat=True)
        )
    return alive
