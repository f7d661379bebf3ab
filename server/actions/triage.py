"""Storing a triage assessment: the flag on the message and the thread, the audit, the alerts.

Several workers may assess the same message (a reclaimed job, the sweep, a retry after a crash):
only the first to store its result records anything, so the patient's guidance and the staff's
alert are sent once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from server import streams
from server.actions import audit
from server.models import Message, MessageKind, Thread

SUICIDAL = "suicidal"


async def record_assessment(message_id: int, emergency: bool, categories: Sequence[str]) -> bool:
    """Store the assessment of a patient message; False if it was already stored (or the message
    is gone), in which case nothing is recorded twice."""
    now = datetime.now(UTC)
    flagged = sorted(set(categories)) if emergency else []
    async with in_transaction() as connection:
        stored = (
            await Message.filter(id=message_id, kind=MessageKind.PATIENT, triaged_at__isnull=True)
            .using_db(connection)
            .update(triaged_at=now, emergency=emergency, emergency_categories=flagged)
        )
        if not stored:
            return False
        message = await Message.get(id=message_id, using_db=connection)
        event: streams.Recorded | None = None
        if emergency:
            thread = await Thread.select_for_update().using_db(connection).get(id=message.thread_id)
            merged = sorted(set(thread.emergency_categories) | set(flagged))
            await (
                Thread.filter(id=thread.id)
                .using_db(connection)
                .update(emergency=True, emergency_categories=merged, updated_at=now)
            )
            thread.emergency, thread.emergency_categories = True, merged
            await audit.record_thread(
                None,
                "message.flagged",
                thread,
                # That a flag was raised, not what about: the categories are health data and
                # stay on the message and the thread.
                {"message_id": message_id},
                using=connection,
            )
            event = await streams.record(
                connection,
                "message.flagged",
                streams.thread_audience(thread),
                thread_id=thread.id,
                data={"message_id": message_id, "suicidal": SUICIDAL in flagged},
            )
        else:
            await audit.record_thread(
                None,
                "message.assessed",
                await Thread.get(id=message.thread_id, using_db=connection),
                {"message_id": message_id},
                using=connection,
            )
    if event is not None:
        await streams.announce(event)
    return True


async def unassessed_messages(older_than: timedelta, limit: int) -> list[int]:
    """Patient messages still waiting for triage after `older_than`, oldest first: their job was
    lost (Redis restarted, no worker ran, a worker crashed) and the sweep takes them over."""
    cutoff = datetime.now(UTC) - older_than
    return list(
        await Message.filter(
            kind=MessageKind.PATIENT, triaged_at__isnull=True, created_at__lte=cutoff
        )
        .order_by("id")
        .limit(limit)
        .values_list("id", flat=True)
    )
