"""Opening, deciding on, assigning and closing requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server import jobs, sql, streams
from server.actions import audit
from server.models import (
    CareRelationship,
    Category,
    Message,
    MessageKind,
    MessagingSettings,
    ReadState,
    Role,
    Thread,
    ThreadStatus,
    User,
)
from server.rules import eligibility, quotas, thread_states, validation
from server.rules.refusal import Refusal, Refused
from server.translatable import N_

OPEN_STATUSES = (ThreadStatus.PENDING, ThreadStatus.OPEN)

NOT_STAFF_OF_PRACTICE = Refusal("bad_assignee", N_("Choose a member of this practice's team."), 400)


def _refuse_if(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise Refused(refusal)


_COUNT_RECENT = (
    "SELECT COUNT(*) FILTER (WHERE created_at >= ?) AS minute, COUNT(*) AS day"
    " FROM message WHERE author_id = ? AND kind = ? AND created_at >= ?"
)


async def lock_patient_and_count(patient_id: int, connection: BaseDBAsyncClient) -> tuple[int, int]:
    """Lock the patient's row, then count the messages they wrote in the last minute and day.

    Sending is serialised per patient: limits are counted, then written, under this lock, so
    parallel requests cannot all pass the same count. The count is its own statement because on
    PostgreSQL a statement sees only what was committed when it started, before the lock wait.
    """
    if sql.is_postgres(connection):
        await sql.fetch(connection, 'SELECT id FROM "user" WHERE id = ? FOR UPDATE', patient_id)
    else:
        # SQLite has no row locks: take its write lock before reading. A transaction that reads
        # first fails at once ("database is locked") when another process, a `colloque worker`
        # say, commits before it writes; one that writes first waits for the lock instead.
        await sql.fetch(connection, 'UPDATE "user" SET id = id WHERE id = ?', patient_id)
    now = datetime.now(UTC)
    rows = await sql.fetch(
        connection,
        _COUNT_RECENT,
        now - timedelta(minutes=1),
        patient_id,
        MessageKind.PATIENT.value,
        now - timedelta(days=1),
    )
    return int(rows[0]["minute"]), int(rows[0]["day"])


async def availability_for(
    patient: User, practitioner: User, connection: BaseDBAsyncClient | None = None
) -> tuple[Refusal | None, MessagingSettings | None]:
    """Whether `patient` may open a request with `practitioner` now, and the latter's settings."""
    has_consulted = (
        await CareRelationship.filter(patient_id=patient.id, practitioner_id=practitioner.id)
        .using_db(connection)
        .exists()
    )
    settings = await MessagingSettings.get_or_none(
        practitioner_id=practitioner.id, using_db=connection
    )
    open_count = (
        await Thread.filter(
            patient_id=patient.id, practitioner_id=practitioner.id, status__in=OPEN_STATUSES
        )
        .using_db(connection)
        .count()
    )
    availability = (
        eligibility.PractitionerAvailability(
            messaging_enabled=settings.messaging_enabled,
            accepting_requests=settings.accepting_requests,
            max_open_requests_per_patient=settings.max_open_requests_per_patient,
        )
        if settings
        else None
    )
    return eligibility.check_can_open_request(has_consulted, availability, open_count), settings


async def open_request(
    patient: User, practitioner_id: int | None, category: str, subject: str, body: str
) -> Thread:
    """Create a pending request and its first message, then tell the practice."""
    parsed_category = validation.parse_category(category)
    _refuse_if(None if parsed_category else validation.BAD_CATEGORY)
    _refuse_if(validation.check_subject(subject) or validation.check_body(body))
    practitioner = (
        await User.get_or_none(id=practitioner_id, role=Role.PRACTITIONER, is_active=True)
        if practitioner_id
        else None
    )
    _refuse_if(None if practitioner else eligibility.NOT_CONSULTED)
    assert practitioner is not None and parsed_category is not None

    now = datetime.now(UTC)
    async with in_transaction() as connection:
        counts = await lock_patient_and_count(patient.id, connection)
        refusal, settings = await availability_for(patient, practitioner, connection)
        _refuse_if(refusal)
        _refuse_if(quotas.check_message_quota(*counts))
        assert settings is not None and practitioner.practice_id is not None
        thread = await Thread.create(
            practice_id=practitioner.practice_id,
            patient=patient,
            practitioner=practitioner,
            category=parsed_category,
            subject=subject,
            last_seq=1,
            last_message_at=now,
            using_db=connection,
        )
        first = await Message.create(
            thread=thread,
            seq=1,
            author=patient,
            kind=MessageKind.PATIENT,
            body=body,
            using_db=connection,
        )
        if settings.away_message.strip():
            # The away reply is part of the conversation, so the patient reads it where they
            # will look for the answer.
            thread.last_seq = 2
            await Message.create(
                thread=thread,
                seq=2,
                author=None,
                kind=MessageKind.SYSTEM,
                body=settings.away_message,
                using_db=connection,
            )
            await thread.save(update_fields=["last_seq"], using_db=connection)
        await ReadState.create(
            user=patient, thread=thread, last_read_seq=thread.last_seq, using_db=connection
        )
        await audit.record_thread(
            patient.id,
            "thread.opened",
            thread,
            {"category": parsed_category.value},
            using=connection,
        )
        event = await streams.record(
            connection, "thread.created", streams.thread_audience(thread), thread_id=thread.id
        )
    await streams.announce(event)
    await jobs.enqueue_triage(first.id)
    return thread


async def _set_status(
    actor: User,
    thread: Thread,
    status: ThreadStatus,
    *,
    reason: str = "",
    action: str,
    holder: User | None = None,
) -> Thread:
    now = datetime.now(UTC)
    changes: dict[str, object] = {"status": status, "updated_at": now}
    if holder is not None and thread.assignee_id is None:
        changes["assignee_id"] = holder.id
    if status in (ThreadStatus.CLOSED, ThreadStatus.DECLINED):
        changes["closed_at"] = now
    if reason:
        changes["decline_reason"] = reason
    async with in_transaction() as connection:
        # Conditional update: two staff deciding at once cannot both succeed.
        updated = (
            await Thread.filter(id=thread.id, status=thread.status)
            .using_db(connection)
            .update(**changes)
        )
        if not updated:
            raise Refused(thread_states.NOT_PENDING)
        await audit.record_thread(
            actor.id, action, thread, {"status": status.value}, using=connection
        )
        event = await streams.record(
            connection,
            "thread.status",
            streams.thread_audience(thread, holder.id if holder else None),
            thread_id=thread.id,
            data={"status": status.value},
        )
    for name, value in changes.items():
        setattr(thread, name, value)
    if "assignee_id" in changes:
        thread.assignee = holder
    await streams.announce(event)
    return thread


async def accept(actor: User, thread: Thread) -> Thread:
    _refuse_if(
        thread_states.check_decide(
            ThreadStatus(thread.status), Category(thread.category), Role(actor.role)
        )
    )
    # Whoever accepts holds the request: it leaves the practice's waiting queue.
    return await _set_status(
        actor, thread, ThreadStatus.OPEN, action="thread.accepted", holder=actor
    )


async def decline(actor: User, thread: Thread, reason: str) -> Thread:
    _refuse_if(
        thread_states.check_decline(
            ThreadStatus(thread.status), Category(thread.category), Role(actor.role), reason
        )
        or (validation.REASON_TOO_LONG if len(reason) > validation.MAX_REASON_CHARS else None)
        or validation.check_storable(reason)
    )
    return await _set_status(
        actor, thread, ThreadStatus.DECLINED, reason=reason, action="thread.declined"
    )


async def close(actor: User, thread: Thread) -> Thread:
    _refuse_if(thread_states.check_close(ThreadStatus(thread.status), Role(actor.role)))
    return await _set_status(actor, thread, ThreadStatus.CLOSED, action="thread.closed")


async def assign(actor: User, thread: Thread, assignee_id: int | None) -> Thread:
    """Give a thread to a member of the practice's team (or to nobody with None)."""
    assignee = None
    if assignee_id is not None:
        assignee = await User.get_or_none(
            id=assignee_id,
            practice_id=thread.practice_id,
            role__in=(Role.PRACTITIONER, Role.SECRETARY),
            is_active=True,
        )
        _refuse_if(None if assignee else NOT_STAFF_OF_PRACTICE)
    previous = thread.assignee_id
    async with in_transaction() as connection:
        await (
            Thread.filter(id=thread.id)
            .using_db(connection)
            .update(assignee_id=assignee_id, updated_at=datetime.now(UTC))
        )
        await audit.record_thread(
            actor.id, "thread.assigned", thread, {"assignee_id": assignee_id}, using=connection
        )
        thread.assignee_id = assignee_id
        # Whoever lost sight of the thread by the change hears about it too, to drop it.
        event = await streams.record(
            connection,
            "thread.assigned",
            streams.thread_audience(thread, previous),
            thread_id=thread.id,
            data={"assignee_id": assignee_id},
        )
    thread.assignee = assignee
    await streams.announce(event)
    return thread
