"""What a batch of events needs from the database, read in a few queries for the whole batch.

The hub renders events in batches (everything committed since it last looked). Loading each
event's thread, message and read marks on its own cost several round trips per event and per
named viewer; here it is one query per kind of row for the batch.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from tortoise import connections

from server import joined, sql
from server.actions.visibility import THREAD_RELATIONS
from server.models import Message, StreamEvent, Thread, User

_MESSAGE_RELATIONS = ("author", "thread", *(f"thread__{name}" for name in THREAD_RELATIONS))


@dataclass
class Preloaded:
    threads: dict[int, Thread]
    messages: dict[int, Message]
    #: last_read_seq by (user id, thread id), for every named viewer of the batch's threads;
    #: a pair that is missing has no read mark (nothing read).
    read_marks: dict[tuple[int, int], int]
    #: Practice teams, filled on first use.
    teams: dict[int, list[User]] = field(default_factory=dict)


async def preload(events: list[StreamEvent]) -> Preloaded:
    """Messages come with their thread (one query for a batch of new messages); threads of
    events without a message are read on their own."""
    thread_ids = {e.thread_id for e in events if e.thread_id is not None}
    message_ids = {int(e.data["message_id"]) for e in events if e.data.get("message_id")}
    messages: dict[int, Message] = {}
    threads: dict[int, Thread] = {}
    if message_ids:
        for message in await joined.select(Message, _MESSAGE_RELATIONS, *_among(message_ids)):
            messages[message.id] = message
            threads.setdefault(message.thread_id, message.thread)
    if missing := thread_ids - threads.keys():
        for thread in await joined.select(Thread, THREAD_RELATIONS, *_among(missing)):
            threads[thread.id] = thread
    named = {
        person
        for t in threads.values()
        for person in (t.patient_id, t.practitioner_id, t.assignee_id)
        if person is not None
    }
    read_marks: dict[tuple[int, int], int] = {}
    if threads and named:
        rows = await sql.fetch(
            connections.get("default"),
            "SELECT user_id, thread_id, last_read_seq FROM read_state"  # noqa: S608 - placeholders
            f" WHERE thread_id IN ({_marks(threads)}) AND user_id IN ({_marks(named)})",
            *sorted(threads),
            *sorted(named),
        )
        read_marks = {(r["user_id"], r["thread_id"]): r["last_read_seq"] for r in rows}
    return Preloaded(threads, messages, read_marks)


def _marks(ids: Collection[int]) -> str:
    return ", ".join("?" * len(ids))


def _among(ids: set[int]) -> tuple[str, ...] | tuple[object, ...]:
    """`main.id IN (...)` with one placeholder per id, and the ids."""
    return (f"main.id IN ({_marks(ids)})", *sorted(ids))
