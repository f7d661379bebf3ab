"""What pages show: threads lists, unread counts and availability, read from the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q

from server.actions.threads import OPEN_STATUSES, availability_for
from server.models import (
    CareRelationship,
    Message,
    MessagingSettings,
    ReadState,
    Role,
    Thread,
    ThreadStatus,
    User,
)
from server.rules.refusal import Refusal


@dataclass(frozen=True)
class ThreadRow:
    thread: Thread
    unread: int
    waiting: timedelta


@dataclass(frozen=True)
class PractitionerChoice:
    practitioner: User
    refusal: Refusal | None
    settings: MessagingSettings | None
    last_consultation: object


async def _rows(user: User, threads: list[Thread]) -> list[ThreadRow]:
    """Attach unread counts (from read state, so every tab and device agrees) and waiting time."""
    read = dict(
        await ReadState.filter(user_id=user.id, thread_id__in=[t.id for t in threads]).values_list(
            "thread_id", "last_read_seq"
        )
    )
    now = datetime.now(UTC)
    return [
        ThreadRow(t, max(0, t.last_seq - read.get(t.id, 0)), now - t.created_at) for t in threads
    ]


async def patient_threads(patient: User) -> list[ThreadRow]:
    threads = (
        await Thread.filter(patient_id=patient.id)
        .select_related("practitioner")
        .order_by("-last_message_at")
    )
    return await _rows(patient, threads)


async def practitioner_choices(patient: User) -> list[PractitionerChoice]:
    """Every practitioner the patient has consulted, with whether and why they can write now."""
    relationships = (
        await CareRelationship.filter(patient_id=patient.id)
        .select_related("practitioner")
        .order_by("practitioner__display_name")
    )
    choices = []
    for relationship in relationships:
        refusal, settings = await availability_for(patient, relationship.practitioner)
        choices.append(
            PractitionerChoice(
                relationship.practitioner, refusal, settings, relationship.last_consultation
            )
        )
    return choices


INBOX_FILTERS = ("active", "pending", "open", "closed", "all")


async def inbox_threads(practitioner: User, status_filter: str) -> list[ThreadRow]:
    """A practitioner's threads: emergencies first, then unread, then the most recent."""
    query = Thread.filter(Q(practitioner_id=practitioner.id) | Q(assignee_id=practitioner.id))
    if status_filter == "active":
        query = query.filter(status__in=OPEN_STATUSES)
    elif status_filter == "closed":
        query = query.filter(status__in=(ThreadStatus.CLOSED, ThreadStatus.DECLINED))
    elif status_filter in ("pending", "open"):
        query = query.filter(status=status_filter)
    threads = await query.select_related("patient").order_by("-last_message_at").limit(200)
    rows = await _rows(practitioner, threads)
    return sorted(rows, key=lambda row: (not row.thread.emergency, row.unread == 0))


async def queue_threads(staff: User) -> list[ThreadRow]:
    """The practice's requests waiting for someone: pending ones and open ones nobody holds.

    Emergencies first, then the longest waiting.
    """
    threads = (
        await Thread.filter(practice_id=staff.practice_id)
        .filter(Q(status=ThreadStatus.PENDING) | Q(status=ThreadStatus.OPEN, assignee_id=None))
        .select_related("patient", "practitioner")
        .order_by("created_at")
        .limit(500)
    )
    rows = await _rows(staff, threads)
    return sorted(rows, key=lambda row: not row.thread.emergency)


async def practice_team(practice_id: int) -> list[User]:
    return await User.filter(
        practice_id=practice_id, role__in=(Role.PRACTITIONER, Role.SECRETARY), is_active=True
    ).order_by("role", "display_name")


async def thread_messages(thread: Thread) -> list[Message]:
    return await Message.filter(thread_id=thread.id).select_related("author").order_by("seq")
