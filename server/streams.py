"""The event log behind live streams: recorded inside the change's transaction, announced after.

Every change a user should see live is a `StreamEvent` row committed with the change itself.
Event ids are committed in increasing order (on PostgreSQL a table lock taken just before the
insert makes commit order follow id order, SQLite serialises writers anyway), so "every event
after id N" read from the database never misses one that commits later: that is what
reconnecting clients and each process's hub read. The broker only rings the bell.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server import joined, sql
from server.broker import Broker, InProcessBroker
from server.models import Role, StreamEvent, StreamRecipient, Thread, User

log = logging.getLogger("colloque.streams")

# Replaying more than this to one client costs more than reloading the page's parts.
MAX_REPLAY = 500

STAFF_WIDE_ROLES = (Role.SECRETARY, Role.ADMIN)


@dataclass(frozen=True)
class Audience:
    """Who an event is for: named users, plus every secretary and administrator of a practice."""

    user_ids: frozenset[int]
    practice_staff_of: int | None = None


def thread_audience(thread: Thread, *also: int | None) -> Audience:
    """Everyone who may see `thread`: patient, practitioner, assignee and the practice's staff."""
    people = {thread.patient_id, thread.practitioner_id, thread.assignee_id, *also}
    people.discard(None)
    return Audience(frozenset(p for p in people if p is not None), thread.practice_id)


async def record(
    connection: BaseDBAsyncClient,
    kind: str,
    audience: Audience,
    *,
    thread_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Add an event to the log inside the caller's transaction; returns its id.

    Call it last in the transaction: the ordering lock is held until commit.
    """
    if connection.capabilities.dialect == "postgres":
        await connection.execute_script("LOCK TABLE stream_event IN SHARE ROW EXCLUSIVE MODE")
    event = await StreamEvent.create(
        kind=kind,
        thread_id=thread_id,
        practice_id=audience.practice_staff_of,
        to_practice_staff=audience.practice_staff_of is not None,
        data=data or {},
        using_db=connection,
    )
    if audience.user_ids:
        await StreamRecipient.bulk_create(
            [StreamRecipient(event_id=event.id, user_id=uid) for uid in sorted(audience.user_ids)],
            using_db=connection,
        )
    return event.id


_broker: Broker = InProcessBroker()


def use_broker(broker: Broker) -> None:
    global _broker
    _broker = broker


async def _ring(payload: dict[str, Any]) -> None:
    try:
        await _broker.publish(json.dumps(payload).encode())
    except Exception as error:
        # Hubs also poll the log, and resync when the broker comes back: nothing is lost.
        log.warning("broker publish failed (%s): live delivery waits for the next poll", error)


async def announce(event_id: int) -> None:
    """Tell every process that events up to `event_id` are committed."""
    await _ring({"event": event_id})


async def announce_session_end(session_id: int) -> None:
    """Close that session's streams on every process (logout)."""
    await _ring({"session_ended": session_id})


async def announce_typing(thread: Thread, typist: User) -> None:
    """Ephemeral: not logged, not replayed, only to staff who see the thread."""
    await _ring(
        {
            "typing": {
                "thread_id": thread.id,
                "practice_id": thread.practice_id,
                "user_ids": sorted(thread_audience(thread).user_ids - {typist.id}),
                "name": typist.display_name,
            }
        }
    )


async def latest_event_id() -> int:
    last = await StreamEvent.all().order_by("-id").first().values_list("id", flat=True)
    return int(last or 0)


async def events_after(after: int, limit: int) -> list[tuple[StreamEvent, frozenset[int]]]:
    """Committed events after `after`, in order, with their named recipients."""
    events = await joined.select(
        StreamEvent, (), "main.id > ? ORDER BY main.id LIMIT ?", after, limit
    )
    if not events:
        return []
    recipients: dict[int, set[int]] = {}
    rows = await sql.fetch(
        connections.get("default"),
        "SELECT event_id, user_id FROM stream_recipient WHERE event_id > ? AND event_id <= ?",
        after,
        events[-1].id,
    )
    for row in rows:
        recipients.setdefault(row["event_id"], set()).add(row["user_id"])
    return [(e, frozenset(recipients.get(e.id, ()))) for e in events]


async def replay_for(user: User, after: int) -> list[StreamEvent] | None:
    """The user's events after `after`, in order; None when too many were missed or the log no
    longer reaches back that far (the client then reloads its parts)."""
    ids = set(
        await StreamRecipient.filter(user_id=user.id, event_id__gt=after)
        .order_by("event_id")
        .limit(MAX_REPLAY + 1)
        .values_list("event_id", flat=True)
    )
    if user.role in STAFF_WIDE_ROLES and user.practice_id is not None:
        ids.update(
            await StreamEvent.filter(
                practice_id=user.practice_id, to_practice_staff=True, id__gt=after
            )
            .order_by("id")
            .limit(MAX_REPLAY + 1)
            .values_list("id", flat=True)
        )
    if len(ids) > MAX_REPLAY:
        return None
    oldest = await StreamEvent.all().order_by("id").first().values_list("id", flat=True)
    if oldest is not None and after < int(oldest) - 1:
        return None
    return await StreamEvent.filter(id__in=sorted(ids)).order_by("id") if ids else []
