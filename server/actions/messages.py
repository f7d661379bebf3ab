"""Posting a message in a thread and keeping read state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server import jobs, sql, streams
from server.actions import audit
from server.actions.threads import lock_patient_and_count
from server.actions.visibility import may_read_content
from server.models import Message, MessageKind, Role, StreamEvent, Thread, ThreadStatus, User
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
    async with _writing(in_transaction_anyway=role is Role.PATIENT) as connection:
        if role is Role.PATIENT:
            quota = quotas.check_message_quota(*await lock_patient_and_count(author.id, connection))
            if quota is not None:
                raise Refused(quota)
        message, event = await _append(connection, author, thread, kind, body, now)
    thread.last_seq, thread.last_message_at = message.seq, now
    await streams.announce(event)
    if kind is MessageKind.PATIENT:
        await jobs.enqueue_triage(message.id)
    return message


@asynccontextmanager
async def _writing(*, in_transaction_anyway: bool) -> AsyncIterator[BaseDBAsyncClient]:
    """Where `_append` writes. On PostgreSQL it is one statement, atomic on its own: without a
    transaction around it, a staff answer costs one round trip instead of four. A patient's
    message needs one, to count their quota under the lock."""
    connection = connections.get("default")
    if sql.is_postgres(connection) and not in_transaction_anyway:
        yield connection
        return
    async with in_transaction() as transaction:
        yield transaction


async def _append(
    connection: BaseDBAsyncClient,
    author: User,
    thread: Thread,
    kind: MessageKind,
    body: str,
    now: datetime,
) -> tuple[Message, streams.Recorded]:
    """Number the message (the thread's row lock keeps numbering gap-free), store it, move the
    author's read mark, audit it and record its event."""
    role = Role(author.role)
    if not sql.is_postgres(connection):
        locked = await _next_seq(thread.id, role, now, connection)
        message = await Message.create(
            thread_id=thread.id,
            seq=locked.last_seq,
            author=author,
            kind=kind,
            body=body,
            using_db=connection,
        )
        await _read_up_to(author.id, thread.id, locked.last_seq, connection)
        await audit.record_thread(
            author.id, "message.posted", thread, {"seq": locked.last_seq}, using=connection
        )
        event = await streams.record(
            connection,
            "message.created",
            streams.thread_audience(locked),
            thread_id=thread.id,
            data={"message_id": message.id, "seq": locked.last_seq},
        )
        return message, event
    rows = await connection.execute_query_dict(
        _APPEND,
        [
            now,
            thread.id,
            _postable(role),
            author.id,
            kind.value,
            _BODY.to_db_value(body, None),
            audit.pseudonym(thread.patient_id),
            audit.thread_object(thread.id),
        ],
    )
    if not rows:
        await _refuse_unless_postable_now(thread.id, role, connection)
        return await _append(connection, author, thread, kind, body, now)
    row = rows[0]
    locked = Thread(
        id=thread.id,
        patient_id=row["patient_id"],
        practitioner_id=row["practitioner_id"],
        assignee_id=row["assignee_id"],
        practice_id=row["practice_id"],
    )
    message = Message(
        id=row["message_id"],
        thread_id=thread.id,
        seq=row["last_seq"],
        author=author,
        kind=kind,
        body=body,
        created_at=now,
    )
    event = streams.Recorded(
        StreamEvent(kind="message.created", thread_id=thread.id),
        streams.thread_audience(locked).user_ids,
    )
    return message, event


_BODY = Message._meta.fields_map["body"]

# PostgreSQL: `_append` in one statement. Each part reads the numbered thread row `t`, so
# nothing is written when the thread is not postable (no row comes back). The event waits in
# pending_event like any other (streams.record) and is numbered once this commits.
_APPEND = """
WITH t AS (
    UPDATE thread SET last_seq = last_seq + 1, last_message_at = $1, updated_at = $1
    WHERE id = $2 AND status = ANY($3::varchar[])
    RETURNING id, last_seq, patient_id, practitioner_id, assignee_id, practice_id),
m AS (
    INSERT INTO message
        (thread_id, seq, author_id, kind, body, created_at, emergency, emergency_categories)
    SELECT id, last_seq, $4, $5, $6, $1, false, '[]'::jsonb FROM t
    RETURNING id),
read_mark AS (
    INSERT INTO read_state (user_id, thread_id, last_read_seq, updated_at)
    SELECT $4, id, last_seq, $1 FROM t
    ON CONFLICT (user_id, thread_id) DO UPDATE
    SET last_read_seq = excluded.last_read_seq, updated_at = excluded.updated_at
    WHERE read_state.last_read_seq < excluded.last_read_seq),
audited AS (
    INSERT INTO audit_event
        (actor_id, action, thread_id, practice_id, subject, object, outcome, detail, created_at)
    SELECT $4, 'message.posted', id, practice_id, $7, $8, 'ok',
        jsonb_build_object('seq', last_seq), $1
    FROM t),
event AS (
    INSERT INTO pending_event
        (kind, thread_id, practice_id, to_practice_staff, data, recipients, created_at)
    SELECT 'message.created', t.id, t.practice_id, true,
        jsonb_build_object('message_id', m.id, 'seq', t.last_seq),
        to_jsonb(ARRAY(
            SELECT DISTINCT person
            FROM unnest(ARRAY[t.patient_id, t.practitioner_id, t.assignee_id]) AS person
            WHERE person IS NOT NULL ORDER BY person)),
        $1
    FROM t, m)
SELECT t.last_seq, t.patient_id, t.practitioner_id, t.assignee_id, t.practice_id,
    m.id AS message_id
FROM t, m
"""


def _postable(role: Role) -> list[str]:
    return [s.value for s in ThreadStatus if thread_states.check_post(s, role) is None]


async def _refuse_unless_postable_now(
    thread_id: int, role: Role, connection: BaseDBAsyncClient
) -> None:
    """The numbering found the thread not postable: its status may have changed since the page
    was loaded. Refuse with the reason, unless it was accepted in the meantime."""
    current = await Thread.get(id=thread_id, using_db=connection)
    refusal = thread_states.check_post(ThreadStatus(current.status), role)
    if refusal is not None:
        raise Refused(refusal)


async def _next_seq(
    thread_id: int, role: Role, now: datetime, connection: BaseDBAsyncClient
) -> Thread:
    """Take the thread's next message number, if its status (read on the locked row, since it
    may have changed since the page was loaded) still lets `role` post.

    The UPDATE locks the row until commit, which keeps the numbering gap-free; it returns the
    fields the event's audience needs, in the same round trip.
    """
    postable = _postable(role)
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
    await _refuse_unless_postable_now(thread_id, role, connection)
    return await _next_seq(thread_id, role, now, connection)


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
