"""Posting a message in a thread and keeping read state."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server import streams
from server.actions import audit
from server.actions.threads import lock_patient, patient_message_counts
from server.actions.visibility import may_read_content
from server.models import Message, MessageKind, ReadState, Role, Thread, ThreadStatus, User
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
            await lock_patient(author, connection)
            quota = quotas.check_message_quota(*await patient_message_counts(author.id, connection))
            if quota is not None:
                raise Refused(quota)
        locked = await Thread.select_for_update().using_db(connection).get(id=thread.id)
        # The status may have changed since the page was loaded: decide on the locked row.
        late = thread_states.check_post(ThreadStatus(locked.status), role)
        if late is not None:
            raise Refused(late)
        seq = locked.last_seq + 1
        await (
            Thread.filter(id=thread.id)
            .using_db(connection)
            .update(last_seq=seq, last_message_at=now, updated_at=now)
        )
        message = await Message.create(
            thread_id=thread.id, seq=seq, author=author, kind=kind, body=body, using_db=connection
        )
        await _read_up_to(author.id, thread.id, seq, connection)
        await audit.record(author.id, "message.posted", thread.id, {"seq": seq}, using=connection)
        event_id = await streams.record(
            connection,
            "message.created",
            streams.thread_audience(locked),
            thread_id=thread.id,
            data={"message_id": message.id, "seq": seq},
        )
    thread.last_seq, thread.last_message_at = seq, now
    await streams.announce(event_id)
    return message


async def _read_up_to(
    user_id: int, thread_id: int, seq: int, connection: BaseDBAsyncClient
) -> bool:
    """Move the user's read mark forward to `seq`; True if it moved."""
    state, created = await ReadState.get_or_create(
        user_id=user_id, thread_id=thread_id, defaults={"last_read_seq": seq}, using_db=connection
    )
    if created:
        return True
    if state.last_read_seq < seq:
        await ReadState.filter(id=state.id).using_db(connection).update(last_read_seq=seq)
        return True
    return False


async def mark_read(user: User, thread: Thread) -> None:
    """Record that `user` has seen `thread` up to its last message; their other tabs and devices
    follow through their stream."""
    async with in_transaction() as connection:
        advanced = await _read_up_to(user.id, thread.id, thread.last_seq, connection)
        await audit.record(user.id, "thread.read", thread.id, using=connection)
        event_id = (
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
    if event_id is not None:
        await streams.announce(event_id)
