"""server.actions.triage against the database: storing an assessment once, and finding the
patient messages whose triage job went missing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from core_support import (
    ALICE,
    BENIGN,
    CARDIAC,
    MARTIN,
    SECRETARIAT,
    SUBJECT_CERTIFICATE,
    SUBJECT_RENEWAL,
    SUICIDAL,
    thread_by_subject,
    user,
)
from tortoise import connections

from server import jobs
from server.actions import messages, threads
from server.actions.triage import record_assessment, unassessed_messages
from server.jobs import InProcessJobQueue
from server.models import AuditEvent, Message, MessageKind, StreamEvent, Thread

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]

# Words that must never reach the audit trail.
SECRET = "Confidentiel-TR93"


class RecordingQueue(InProcessJobQueue):
    """An in-process queue that also remembers every message id it was asked to assess."""

    def __init__(self) -> None:
        super().__init__()
        self.enqueued: list[int] = []

    async def enqueue(self, message_id: int) -> None:
        self.enqueued.append(message_id)
        await super().enqueue(message_id)


@pytest.fixture
def job_queue() -> Iterator[RecordingQueue]:
    """A queue of our own, to see what the actions asked the workers to assess."""
    queue = RecordingQueue()
    jobs.use_job_queue(queue)
    try:
        yield queue
    finally:
        jobs.use_job_queue(InProcessJobQueue())


async def _alice_says(body: str, subject: str = SUBJECT_RENEWAL) -> Message:
    return await messages.post_message(await user(ALICE), await thread_by_subject(subject), body)


async def _last_event_id() -> int:
    last = await StreamEvent.all().order_by("-id").first()
    return last.id if last is not None else 0


async def _events_since(event_id: int) -> list[StreamEvent]:
    return list(await StreamEvent.filter(id__gt=event_id).order_by("id"))


async def _flag_audits(message_id: int) -> list[AuditEvent]:
    rows = await AuditEvent.filter(action="message.flagged").order_by("id")
    return [row for row in rows if row.detail.get("message_id") == message_id]


# --- storing an assessment ---------------------------------------------------------------------


async def test_an_emergency_flags_the_message_and_its_thread() -> None:
    message = await _alice_says(CARDIAC)
    before = await _last_event_id()

    assert await record_assessment(message.id, True, ["cardiac"]) is True

    stored = await Message.get(id=message.id)
    assert stored.triaged_at is not None
    assert stored.emergency is True
    assert stored.emergency_categories == ["cardiac"]
    thread = await Thread.get(id=message.thread_id)
    assert thread.emergency is True
    assert thread.emergency_categories == ["cardiac"]
    [event] = await _events_since(before)
    assert event.kind == "message.flagged"
    assert event.thread_id == thread.id
    assert event.data == {"message_id": message.id, "suicidal": False}


async def test_a_suicidal_assessment_says_so_in_its_event() -> None:
    message = await _alice_says(SUICIDAL)
    before = await _last_event_id()
    assert await record_assessment(message.id, True, ["suicidal"])
    [event] = await _events_since(before)
    assert event.data == {"message_id": message.id, "suicidal": True}


async def test_categories_accumulate_on_the_thread_and_are_deduplicated() -> None:
    first = await _alice_says(CARDIAC)
    second = await _alice_says(SUICIDAL)
    assert await record_assessment(first.id, True, ["cardiac"])
    assert await record_assessment(second.id, True, ["suicidal", "suicidal"])
    thread = await Thread.get(id=first.thread_id)
    assert thread.emergency is True
    assert sorted(thread.emergency_categories) == ["cardiac", "suicidal"]
    assert (await Message.get(id=first.id)).emergency_categories == ["cardiac"]
    assert (await Message.get(id=second.id)).emergency_categories == ["suicidal"]
    # A later benign message leaves the thread flagged, with the same categories.
    third = await _alice_says(BENIGN)
    assert await record_assessment(third.id, False, [])
    thread = await Thread.get(id=first.thread_id)
    assert thread.emergency is True
    assert sorted(thread.emergency_categories) == ["cardiac", "suicidal"]


async def test_the_flag_is_audited_without_the_messages_content() -> None:
    message = await _alice_says(f"{CARDIAC} {SECRET}")
    assert await record_assessment(message.id, True, ["cardiac"])
    [row] = await _flag_audits(message.id)
    assert row.thread_id == message.thread_id
    assert row.actor_id is None  # the worker, not a person
    # The audit line says that a flag was raised, not what about: categories are health data.
    assert row.detail == {"message_id": message.id}
    whole_table = repr(
        await connections.get("default").execute_query_dict("SELECT * FROM audit_event")
    )
    assert SECRET not in whole_table
    assert "poitrine" not in whole_table


async def test_a_second_assessment_of_the_same_message_records_nothing() -> None:
    message = await _alice_says(CARDIAC)
    assert await record_assessment(message.id, True, ["cardiac"]) is True
    first_store = await Message.get(id=message.id)
    before = await _last_event_id()
    audits = await AuditEvent.all().count()

    # The same result again (a reclaimed job), or a different one (another worker, the sweep).
    assert await record_assessment(message.id, True, ["cardiac"]) is False
    assert await record_assessment(message.id, False, []) is False
    assert await record_assessment(message.id, True, ["suicidal"]) is False

    assert await _events_since(before) == []
    assert await AuditEvent.all().count() == audits
    assert len(await _flag_audits(message.id)) == 1
    stored = await Message.get(id=message.id)
    assert (stored.triaged_at, stored.emergency, stored.emergency_categories) == (
        first_store.triaged_at,
        True,
        ["cardiac"],
    )
    assert (await Thread.get(id=message.thread_id)).emergency_categories == ["cardiac"]


async def test_a_benign_assessment_sends_no_event_and_flags_nothing() -> None:
    message = await _alice_says(BENIGN)
    before = await _last_event_id()
    # Categories given with emergency=False are not stored either.
    assert await record_assessment(message.id, False, ["cardiac"]) is True
    assert await _events_since(before) == []
    stored = await Message.get(id=message.id)
    assert stored.triaged_at is not None
    assert (stored.emergency, stored.emergency_categories) == (False, [])
    thread = await Thread.get(id=message.thread_id)
    assert (thread.emergency, thread.emergency_categories) == (False, [])
    assert await _flag_audits(message.id) == []
    # Assessed once: a later emergency verdict for it changes nothing.
    assert await record_assessment(message.id, True, ["cardiac"]) is False
    assert (await Thread.get(id=message.thread_id)).emergency is False


async def test_an_unknown_message_is_not_recorded() -> None:
    before = await _last_event_id()
    assert await record_assessment(987_654, True, ["cardiac"]) is False
    assert await _events_since(before) == []


# --- staff messages are never triaged ------------------------------------------------------------


async def test_only_patient_messages_are_queued_for_triage(job_queue: RecordingQueue) -> None:
    martin, secretary = await user(MARTIN), await user(SECRETARIAT)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    await messages.post_message(martin, thread, CARDIAC)
    await messages.post_message(secretary, await thread_by_subject(SUBJECT_RENEWAL), SUICIDAL)
    assert job_queue.enqueued == []

    mine = await _alice_says(CARDIAC)
    assert job_queue.enqueued == [mine.id]

    opened = await threads.open_request(
        await user(ALICE), martin.id, "question", "Douleur", CARDIAC
    )
    first = await Message.get(thread_id=opened.id, seq=1)
    assert first.kind == MessageKind.PATIENT
    assert job_queue.enqueued == [mine.id, first.id]


async def test_a_staff_message_is_never_assessed() -> None:
    martin = await user(MARTIN)
    staff = await messages.post_message(martin, await thread_by_subject(SUBJECT_RENEWAL), CARDIAC)
    before = await _last_event_id()
    assert await record_assessment(staff.id, True, ["cardiac"]) is False
    stored = await Message.get(id=staff.id)
    assert (stored.triaged_at, stored.emergency, stored.emergency_categories) == (None, False, [])
    assert (await Thread.get(id=staff.thread_id)).emergency is False
    assert await _events_since(before) == []
    assert await _flag_audits(staff.id) == []


# --- what the sweep finds ----------------------------------------------------------------------


async def _age(message: Message, seconds: float) -> None:
    await Message.filter(id=message.id).update(
        created_at=datetime.now(UTC) - timedelta(seconds=seconds)
    )


async def test_unassessed_messages_are_the_old_unassessed_patient_messages() -> None:
    martin = await user(MARTIN)
    old = await _alice_says(CARDIAC)
    older = await _alice_says(BENIGN, SUBJECT_CERTIFICATE)
    recent = await _alice_says(SUICIDAL)
    assessed = await _alice_says(BENIGN)
    staff = await messages.post_message(martin, await thread_by_subject(SUBJECT_RENEWAL), BENIGN)
    await _age(old, 10)
    await _age(older, 20)
    await _age(assessed, 10)
    await _age(staff, 10)
    assert await record_assessment(assessed.id, False, [])

    found = await unassessed_messages(timedelta(seconds=5), 1000)

    assert old.id in found and older.id in found
    assert recent.id not in found, "a message its job is still assessing is left to the job"
    assert assessed.id not in found
    assert staff.id not in found
    assert found == sorted(found), "oldest first"
    # Whatever else the demo data holds, every id found is an old unassessed patient message.
    cutoff = datetime.now(UTC) - timedelta(seconds=5)
    for row in await Message.filter(id__in=found):
        assert row.kind == MessageKind.PATIENT and row.triaged_at is None
        assert row.created_at <= cutoff
    # And every such message is found.
    expected = await Message.filter(
        kind=MessageKind.PATIENT, triaged_at__isnull=True, created_at__lte=cutoff
    ).values_list("id", flat=True)
    assert set(found) == set(expected)

    assert len(await unassessed_messages(timedelta(seconds=5), 1)) == 1
    assert await unassessed_messages(timedelta(seconds=5), 1) == found[:1]

    # Once they are assessed, the sweep has nothing left to do for them.
    for message_id in found:
        assert await record_assessment(message_id, False, [])
    assert await unassessed_messages(timedelta(seconds=5), 1000) == []
