"""The event log behind live streams: recorded inside the change's transaction, announced after.

Every change a user should see live is recorded with the change itself, in its transaction.
Event ids are committed in increasing order, so "every event after id N" read from the database
never misses one that commits later: that is what reconnecting clients and each process's hub
read. SQLite serialises writers, so an event is numbered when recorded. On PostgreSQL it waits
in `pending_event` until its change commits, then one short statement numbers everything
pending under a lock held only while that statement runs (a lock held until the change's own
commit made every writer of every process wait behind the slowest event loop). The broker only
rings the bell.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from server import joined, sql
from server.broker import Broker, InProcessBroker
from server.models import Role, StreamEvent, StreamRecipient, Thread, User

log = logging.getLogger("colloque.streams")

# Replaying more than this to one client costs more than reloading the page's parts.
MAX_REPLAY = 500

#: The advisory lock that orders event numbers on PostgreSQL (any constant unique to it).
_EVENT_ORDER_LOCK = int.from_bytes(hashlib.sha256(b"colloque:stream_event").digest()[:7], "big")

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
) -> Recorded:
    """Add an event to the log inside the caller's transaction; `announce` it after commit.

    On PostgreSQL the event waits in `pending_event` and takes its number when announced; on
    SQLite, whose writers take turns anyway, it is numbered at once.
    """
    event = StreamEvent(
        kind=kind,
        thread_id=thread_id,
        practice_id=audience.practice_staff_of,
        to_practice_staff=audience.practice_staff_of is not None,
        data=data or {},
        created_at=datetime.now(UTC),
    )
    if sql.is_postgres(connection):
        await sql.fetch(
            connection,
            "INSERT INTO pending_event"
            " (kind, thread_id, practice_id, to_practice_staff, data, recipients, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            event.kind,
            event.thread_id,
            event.practice_id,
            event.to_practice_staff,
            _json(event.data),
            _json(sorted(audience.user_ids)),
            event.created_at,
        )
    else:
        await event.save(using_db=connection)
        if audience.user_ids:
            await StreamRecipient.bulk_create(
                [StreamRecipient(event_id=event.id, user_id=u) for u in sorted(audience.user_ids)],
                using_db=connection,
            )
    return Recorded(event, audience.user_ids)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


# Moves every committed pending event into the log, numbered in the order they were recorded.
# The advisory lock is taken before any number is drawn and released when this statement
# commits, so numbers commit in increasing order; the database holds it for as long as the
# statement runs, never while waiting on an application process.
_NUMBER_PENDING = (
    "WITH moved AS (DELETE FROM pending_event"
    " WHERE EXISTS (SELECT pg_advisory_xact_lock($1))"
    " RETURNING id, kind, thread_id, practice_id, to_practice_staff, data, recipients,"
    " created_at),"
    " numbered AS (SELECT nextval(pg_get_serial_sequence('stream_event', 'id')) AS event_id, m.*"
    " FROM (SELECT * FROM moved ORDER BY id) AS m),"
    " events AS (INSERT INTO stream_event"
    " (id, kind, thread_id, practice_id, to_practice_staff, data, created_at)"
    " SELECT event_id, kind, thread_id, practice_id, to_practice_staff, data, created_at"
    " FROM numbered),"
    " named AS (INSERT INTO stream_recipient (event_id, user_id)"
    " SELECT event_id, person::int FROM numbered, jsonb_array_elements_text(recipients) AS person)"
    " SELECT event_id, kind, thread_id, practice_id, to_practice_staff, data, recipients,"
    " created_at FROM numbered ORDER BY event_id"
)


async def _number_pending() -> list[Recorded]:
    connection = connections.get("default")
    if not sql.is_postgres(connection):
        return []
    rows = await connection.execute_query_dict(_NUMBER_PENDING, [_EVENT_ORDER_LOCK])
    return [
        Recorded(
            StreamEvent(
                id=row["event_id"],
                kind=row["kind"],
                thread_id=row["thread_id"],
                practice_id=row["practice_id"],
                to_practice_staff=row["to_practice_staff"],
                data=_loaded(row["data"]),
                created_at=row["created_at"],
            ),
            frozenset(_loaded(row["recipients"])),
        )
        for row in rows
    ]


def _loaded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class Recorded:
    """An event added to the log, with the users it names."""

    event: StreamEvent
    recipients: frozenset[int]


_broker: Broker = InProcessBroker()
_note_key = b""


def use_broker(broker: Broker, secret_key: str) -> None:
    """`secret_key` signs the event notes, which hubs then trust as copies of the log's rows."""
    global _broker, _note_key
    _broker = broker
    _note_key = hashlib.sha256(f"colloque-event-notes:{secret_key}".encode()).digest()


async def _publish(payload: bytes) -> None:
    try:
        await _broker.publish(payload)
    except Exception as error:
        # Hubs also poll the log, and resync when the broker comes back: nothing is lost.
        log.warning("broker publish failed (%s): live delivery waits for the next poll", error)


async def _ring(payload: dict[str, Any]) -> None:
    await _publish(json.dumps(payload).encode())


def _mac(body: bytes) -> bytes:
    return hmac.new(_note_key, body, hashlib.sha256).hexdigest().encode()


async def announce(recorded: Recorded) -> None:
    """Call after the commit of the change that recorded the event: numbers what is pending
    (this event, and any other that is waiting), then tells every process."""
    if recorded.event.id is not None:
        await _note(recorded)
        return
    await number_pending()


async def number_pending() -> None:
    """Number and announce whatever events wait (PostgreSQL). Hubs also run it on their poll,
    for an event whose process stopped between its commit and its announcement."""
    try:
        numbered = await _number_pending()
    except Exception:
        # The change is committed; its event is numbered by the next announcement or poll.
        log.exception("could not number pending events; the next poll will")
        return
    for recorded in numbered:
        await _note(recorded)


async def _note(recorded: Recorded) -> None:
    """Tell every process that the log holds everything up to this committed event.

    The note carries a signed copy of the event's row (references only, never content), so
    that a hub which has every earlier event already can deliver it without reading the log.
    """
    event = recorded.event
    body = json.dumps(
        {
            "event": event.id,
            "row": [
                event.kind,
                event.thread_id,
                event.practice_id,
                event.to_practice_staff,
                event.data,
                sorted(recorded.recipients),
            ],
        },
        separators=(",", ":"),
    ).encode()
    await _publish(body + b"\n" + _mac(body))


def read_note(payload: bytes) -> tuple[dict[str, Any], tuple[StreamEvent, frozenset[int]] | None]:
    """A broker payload as a note, and the event it carries when its signature holds.

    A note whose signature fails is still a bell: the hub then reads the log, as for any bell.
    """
    body, _, mac = payload.partition(b"\n")
    note = json.loads(body)
    row = note.get("row") if isinstance(note, dict) else None
    if row is None or not hmac.compare_digest(mac, _mac(body)):
        return note, None
    kind, thread_id, practice_id, to_staff, data, recipients = row
    event = StreamEvent(
        id=int(note["event"]),
        kind=kind,
        thread_id=thread_id,
        practice_id=practice_id,
        to_practice_staff=to_staff,
        data=data,
    )
    return note, (event, frozenset(recipients))


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
