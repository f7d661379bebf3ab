"""Posting a message in a thread and keeping read state."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server import jobs, sql, streams
from server.actions import audit
from server.actions.threads import lock_patient_and_count
from server.actions.visibility import may_read_content
from server.models import Message, MessageKind, Role, Thread, ThreadStatus, User
from server.rules import quotas, thread_states, validation
from server.rules.refusal import Refusal, Refused
from server.translatable import N_

CONTENT_HIDDEN = Refusal(
    "content_hidden", N_("Your practice does not let secretaries read this conversation."), 403
)


async def post_message(author: User, thread: Thread, body: str) -> Message:
    """Append a message to `thread` under a row lock (gap-free numbering), then announce it."""
    role = Role(author.role)
    refusal = validation.check_body(body) or thread_states.check_post(
        ThreadStatus(thread.status), role
    )
    if refusal is None and role is not Role.PATIENT and not may_read_content(author, thread):
        refusal = CONTENT_HIDDEN
    if refusal is not None:
        raise Refused(refusal)

    kind = MessageKind.PATIENT if role is Role.PATIENT else MessageKind.STAFF
    now = datetime.now(UTC)
    async with in_transaction() as connection:
        if role is Role.PATIENT:
            quota = quotas.check_message_quota(*await lock_patient_and_count(author.id, connection))
            if quota is not None:
                raise Refused(quota)
        locked = await _next_seq(thread.id, role, now, connection)
        seq = locked.last_seq
        message = await Message.create(
            thread_id=thread.id, seq=seq, author=author, kind=kind, body=body, using_db=connection
        )
        await _read_up_to(author.id, thread.id, seq, connection)
        await audit.record_thread(
            author.id, "message.posted", thread, {"seq": seq}, using=connection
        )
        event = await streams.record(
            connection,
            "message.created",
            streams.thread_audience(locked),
            thread_id=thread.id,
            data={"message_id": message.id, "seq": seq},
        )
    thread.last_seq, thread.last_message_at = seq, now
    await streams.announce(event)
    if kind is MessageKind.PATIENT:
        await jobs.enqueue_triage(message.id)
    return message


async def _next_seq(
    thread_id: int, role: Role, now: datetime, connection: BaseDBAsyncClient
) -> Thread:
    """Take the thread's next message number, if its status (read on the locked row, since it
    may have changed since the page was loaded) still lets `role` post.

    The UPDATE locks the row until commit, which keeps the numbering gap-free; it returns the
    fields the event's audience needs, in the same round trip.
    """
    postable = [s.value for s in ThreadStatus if thread_states.check_post(s, role) is None]
    rows = await sql.fetch(
        connection,
        "UPDATE thread SET last_seq = last_seq + 1, last_message_at = ?, updated_at = ?"  # noqa: S608 - placeholders only
        f" WHERE id = ? AND status IN ({', '.join('?' * len(postable))})"
        " RETURNING last_seq, patient_id, practitioner_id, assignee_id, practice_id",
        now,
        now,
        thread_id,
        *postable,
    )
    if rows:
        return Thread(id=thread_id, **rows[0])
    current = await Thread.get(id=thread_id, using_db=connection)
    refusal = thread_states.check_post(ThreadStatus(current.status), role)
    if refusal is None:
        # Accepted between the UPDATE and this read: the thread is postable now.
        return await _next_seq(thread_id, role, now, connection)
    raise Refused(refusal)


async def _read_up_to(
    user_id: int, thread_id: int, seq: int, connection: BaseDBAsyncClient
) -> bool:
    """Move the user's read mark forward to `seq` (never back); True if it moved.

    One upsert rather than a get-or-create, which costs a savepoint inside a transaction.
    """
    moved = await sql.fetch(
        connection,
        "INSERT INTO read_state (user_id, thread_id, last_read_seq, updated_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, thread_id) DO UPDATE"
        " SET last_read_seq = excluded.last_read_seq, updated_at = excluded.updated_at"
        " WHERE read_state.last_read_seq < excluded.last_read_seq RETURNING id",
        user_id,
        thread_id,
        seq,
        datetime.now(UTC),
    )
    return bool(moved)


async def mark_read(user: User, thread: Thread) -> None:
    """Record that `user` has seen `thread` up to its last message; their other tabs and devices
    follow through their stream."""
    async with in_transaction() as connection:
        advanced = await _read_up_to(user.id, thread.id, thread.last_seq, connection)
        await audit.record_thread(user.id, "thread.read", thread, using=connection)
        event = (
            await streams.record(
                connection,
                "thread.read",
                streams.Audience(frozenset({user.id})),
                thread_id=thread.id,
                data={"seq": thread.last_seq},
            )
            if advanced
            else None
        )
    if event is not None:
        await streams.announce(event)
