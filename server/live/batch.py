"""What a batch of events needs from the database, read in a few queries for the whole batch.

The hub renders events in batches (everything committed since it last looked). Loading each
event's thread, message and read marks on its own cost several round trips per event and per
named viewer; here it is one query per kind of row for the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server import joined
from server.actions.visibility import THREAD_RELATIONS
from server.models import Message, ReadState, StreamEvent, Thread, User


@dataclass
class Preloaded:
    threads: dict[int, Thread]
    messages: dict[int, Message]
    #: last_read_seq by (user id, thread id), for every named viewer of the batch's threads;
    #: a pair that is missing has no read mark (nothing read).
    read_marks: dict[tuple[int, int], int]
    #: Practice teams, filled on first use.
    teams: dict[int, list[User]] = field(default_factory=dict)

    def read_mark(self, user_id: int, thread_id: int) -> int | None:
        """The mark, 0 when none; None when the batch did not cover that pair (ask the database)."""
        thread = self.threads.get(thread_id)
        if thread is None or user_id not in (
            thread.patient_id,
            thread.practitioner_id,
            thread.assignee_id,
        ):
            return None
        return self.read_marks.get((user_id, thread_id), 0)


async def preload(events: list[StreamEvent]) -> Preloaded:
    thread_ids = {e.thread_id for e in events if e.thread_id is not None}
    message_ids = {int(e.data["message_id"]) for e in events if e.data.get("message_id")}
    threads: dict[int, Thread] = {}
    if thread_ids:
        threads = {
            t.id: t for t in await joined.select(Thread, THREAD_RELATIONS, *_among(thread_ids))
        }
    messages: dict[int, Message] = {}
    if message_ids:
        messages = {
            m.id: m for m in await joined.select(Message, ("author",), *_among(message_ids))
        }
    named = {
        person
        for t in threads.values()
        for person in (t.patient_id, t.practitioner_id, t.assignee_id)
        if person is not None
    }
    read_marks: dict[tuple[int, int], int] = {}
    if threads and named:
        rows = await ReadState.filter(
            thread_id__in=sorted(threads), user_id__in=sorted(named)
        ).values_list("user_id", "thread_id", "last_read_seq")
        read_marks = {(user_id, thread_id): seq for user_id, thread_id, seq in rows}
    return Preloaded(threads, messages, read_marks)


def _among(ids: set[int]) -> tuple[str, ...] | tuple[object, ...]:
    """`main.id IN (...)` with one placeholder per id, and the ids."""
    ordered = sorted(ids)
    return (f"main.id IN ({', '.join('?' * len(ordered))})", *ordered)
