"""server.actions.messages against the database: posting, numbering, quotas and read state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest
from core_support import (
    ALICE,
    BERNARD,
    BOB,
    CHLOE,
    MARTIN,
    SECRETARIAT,
    SUBJECT_CERTIFICATE,
    SUBJECT_FLU,
    SUBJECT_RENEWAL,
    SUBJECT_RESULTS,
    thread_by_subject,
    user,
)

from server import queries, streams
from server.actions import audit, messages, threads
from server.models import AuditEvent, Message, MessageKind, Practice, ReadState, Thread, User
from server.rules import quotas
from server.rules.refusal import Refused

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]


async def _seqs(thread_id: int) -> list[int]:
    return list(
        await Message.filter(thread_id=thread_id).order_by("seq").values_list("seq", flat=True)
    )


async def _expect_refusal(code: str, author: User, thread: Thread, body: str = "Bonjour") -> None:
    before = await Message.all().count()
    last_seq = (await Thread.get(id=thread.id)).last_seq
    with pytest.raises(Refused) as caught:
        await messages.post_message(author, thread, body)
    assert caught.value.refusal.code == code
    assert await Message.all().count() == before
    assert (await Thread.get(id=thread.id)).last_seq == last_seq


async def _backdate_recent_messages_of(author: User, age: timedelta) -> None:
    """Date the author's messages of the last `age` as sent `age` ago; older ones stay put."""
    now = datetime.now(UTC)
    await Message.filter(author_id=author.id, created_at__gt=now - age).update(created_at=now - age)


# --- posting ----------------------------------------------------------------------------------


async def test_staff_answer_takes_the_next_sequence_number() -> None:
    martin = await user(MARTIN)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    message = await messages.post_message(martin, thread, "Votre ordonnance est prête.")
    assert (message.seq, message.kind, message.author_id) == (3, MessageKind.STAFF, martin.id)
    stored = await Thread.get(id=thread.id)
    assert stored.last_seq == 3
    assert stored.last_message_at >= thread.created_at
    assert await _seqs(thread.id) == [1, 2, 3]
    assert (await Message.get(id=message.id)).body == "Votre ordonnance est prête."


@pytest.mark.parametrize("author_email", [MARTIN, ALICE])
async def test_a_message_is_stored_audited_read_and_announced_together(author_email: str) -> None:
    author = await user(author_email)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    before = await streams.latest_event_id()

    message = await messages.post_message(author, thread, "Renouvellement pour trois mois")

    stored = await Message.get(id=message.id)
    assert (stored.thread_id, stored.seq, stored.author_id) == (thread.id, message.seq, author.id)
    assert stored.body == "Renouvellement pour trois mois"
    assert (
        await ReadState.get(user_id=author.id, thread_id=thread.id)
    ).last_read_seq == message.seq
    line = (
        await AuditEvent.filter(action="message.posted", actor_id=author.id).order_by("-id").first()
    )
    assert line is not None
    assert (line.thread_id, line.practice_id, line.object, line.detail) == (
        thread.id,
        thread.practice_id,
        f"thread:{thread.id}",
        {"seq": message.seq},
    )
    assert line.subject == audit.pseudonym(thread.patient_id)
    [(event, recipients)] = await streams.events_after(before, 10)
    assert (event.kind, event.thread_id, event.practice_id, event.to_practice_staff) == (
        "message.created",
        thread.id,
        thread.practice_id,
        True,
    )
    assert event.data == {"message_id": message.id, "seq": message.seq}
    people = {thread.patient_id, thread.practitioner_id, thread.assignee_id}
    assert recipients == people - {None}


async def test_patient_message_is_a_patient_message() -> None:
    alice = await user(ALICE)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    message = await messages.post_message(alice, thread, "Je précise : pour un club.")
    assert (message.seq, message.kind) == (2, MessageKind.PATIENT)


async def test_numbering_has_no_gaps_across_authors_and_refusals() -> None:
    alice, martin = await user(ALICE), await user(MARTIN)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    for n in range(3):
        await messages.post_message(alice, thread, f"Patiente {n}")
        with pytest.raises(Refused):
            await messages.post_message(martin, thread, "")
        await messages.post_message(martin, thread, f"Docteur {n}")
    assert await _seqs(thread.id) == list(range(1, 9))
    assert (await Thread.get(id=thread.id)).last_seq == 8


async def test_concurrent_posts_get_distinct_consecutive_numbers() -> None:
    martin, alice = await user(MARTIN), await user(ALICE)
    thread_id = (await thread_by_subject(SUBJECT_RENEWAL)).id

    async def post(author: User, n: int) -> None:
        # Each writer loaded the thread on its own, as two browser tabs would.
        await messages.post_message(author, await thread_by_subject(SUBJECT_RENEWAL), f"#{n}")

    async with anyio.create_task_group() as group:
        for n in range(8):
            group.start_soon(post, martin if n % 2 else alice, n)
    assert await _seqs(thread_id) == list(range(1, 11))
    assert (await Thread.get(id=thread_id)).last_seq == 10


async def test_patient_cannot_post_in_a_closed_thread() -> None:
    await _expect_refusal(
        "thread_closed", await user(BOB), await thread_by_subject(SUBJECT_RESULTS)
    )


async def test_patient_cannot_post_in_a_declined_thread() -> None:
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    await threads.decline(await user(MARTIN), thread, "Consultation nécessaire")
    await _expect_refusal("thread_declined", await user(ALICE), thread)


async def test_staff_cannot_post_in_a_closed_thread() -> None:
    await _expect_refusal(
        "thread_closed", await user(BERNARD), await thread_by_subject(SUBJECT_RESULTS)
    )


@pytest.mark.parametrize("staff", [MARTIN, SECRETARIAT])
async def test_staff_cannot_answer_a_pending_request(staff: str) -> None:
    await _expect_refusal(
        "awaiting_acceptance", await user(staff), await thread_by_subject(SUBJECT_CERTIFICATE)
    )


async def test_staff_answer_once_the_request_is_accepted() -> None:
    martin = await user(MARTIN)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    await threads.accept(martin, thread)
    message = await messages.post_message(martin, thread, "Passez le chercher demain.")
    assert message.seq == 2


async def test_status_is_checked_on_the_locked_row_not_the_loaded_page() -> None:
    alice, martin = await user(ALICE), await user(MARTIN)
    stale = await thread_by_subject(SUBJECT_RENEWAL)
    await threads.close(martin, await thread_by_subject(SUBJECT_RENEWAL))
    await _expect_refusal("thread_closed", alice, stale)


@pytest.mark.parametrize(("body", "code"), [("", "empty_body"), ("x" * 5001, "body_too_long")])
async def test_body_is_validated(body: str, code: str) -> None:
    await _expect_refusal(code, await user(ALICE), await thread_by_subject(SUBJECT_RENEWAL), body)


async def test_a_body_of_exactly_five_thousand_characters_is_accepted() -> None:
    message = await messages.post_message(
        await user(CHLOE), await thread_by_subject(SUBJECT_FLU), "é" * 5000
    )
    assert len((await Message.get(id=message.id)).body) == 5000


async def test_secretary_answers_when_content_is_visible() -> None:
    message = await messages.post_message(
        await user(SECRETARIAT), await thread_by_subject(SUBJECT_RENEWAL), "Ordonnance à l'accueil"
    )
    assert message.kind == MessageKind.STAFF


async def test_secretary_cannot_post_where_content_is_masked() -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    await Practice.filter(id=thread.practice_id).update(mask_content_for_secretaries=True)
    await _expect_refusal(
        "content_hidden", await user(SECRETARIAT), await thread_by_subject(SUBJECT_RENEWAL)
    )


# --- per-patient quotas (contract floor: >= 10 a minute, >= 20 a day) --------------------------


async def test_a_patient_may_send_ten_messages_a_minute_but_not_without_limit() -> None:
    alice = await user(ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    for n in range(10):
        await messages.post_message(alice, thread, f"Message {n}")
    sent = 10
    with pytest.raises(Refused) as caught:
        while sent < 1000:
            await messages.post_message(alice, thread, f"Message {sent}")
            sent += 1
    assert caught.value.refusal.code == "rate_minute"
    assert caught.value.refusal.status == 429
    assert await Message.filter(author_id=alice.id, thread_id=thread.id).count() == 1 + sent


async def test_the_minute_limit_also_stops_new_requests() -> None:
    alice, martin = await user(ALICE), await user(MARTIN)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    with pytest.raises(Refused):
        for n in range(1000):
            await messages.post_message(alice, thread, f"Message {n}")
    before = await Thread.all().count()
    with pytest.raises(Refused) as caught:
        await threads.open_request(alice, martin.id, "question", "Sujet", "Corps")
    assert caught.value.refusal.code == "rate_minute"
    assert await Thread.all().count() == before


async def test_minute_limit_is_per_patient() -> None:
    alice, chloe = await user(ALICE), await user(CHLOE)
    renewal = await thread_by_subject(SUBJECT_RENEWAL)
    with pytest.raises(Refused):
        for n in range(1000):
            await messages.post_message(alice, renewal, f"Message {n}")
    await messages.post_message(chloe, await thread_by_subject(SUBJECT_FLU), "Moi aussi")


async def test_a_patient_may_send_twenty_messages_a_day_but_not_without_limit() -> None:
    alice = await user(ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    sent = 0
    with pytest.raises(Refused) as caught:
        while sent < 1000:
            await messages.post_message(alice, thread, f"Message {sent}")
            sent += 1
            # Spread over the day so that only the daily limit can apply.
            await _backdate_recent_messages_of(alice, timedelta(hours=2))
    assert sent >= 20
    assert caught.value.refusal.code == "rate_day"
    assert caught.value.refusal.status == 429


async def test_messages_older_than_a_day_do_not_count() -> None:
    alice = await user(ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    with pytest.raises(Refused):
        for n in range(1000):
            await messages.post_message(alice, thread, f"Message {n}")
            await _backdate_recent_messages_of(alice, timedelta(hours=2))
    await _backdate_recent_messages_of(alice, timedelta(hours=25))
    await messages.post_message(alice, thread, "Le lendemain")


async def test_staff_messages_have_no_patient_quota() -> None:
    martin = await user(MARTIN)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    for n in range(45):
        await messages.post_message(martin, thread, f"Réponse {n}")
    assert (await Thread.get(id=thread.id)).last_seq == 47


# --- read state and unread counts -------------------------------------------------------------


async def _patient_unread(patient: User) -> dict[str, int]:
    return {row.thread.subject: row.unread for row in await queries.patient_threads(patient)}


async def _inbox_unread(practitioner: User) -> dict[str, int]:
    return {
        row.thread.subject: row.unread for row in await queries.inbox_threads(practitioner, "all")
    }


async def test_demo_data_starts_read_by_patients() -> None:
    assert await _patient_unread(await user(ALICE)) == {
        SUBJECT_RENEWAL: 0,
        SUBJECT_CERTIFICATE: 0,
    }


async def test_an_answer_is_unread_for_the_patient_until_they_read_it() -> None:
    alice, martin = await user(ALICE), await user(MARTIN)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    await messages.post_message(martin, thread, "Réponse 1")
    await messages.post_message(martin, thread, "Réponse 2")
    assert (await _patient_unread(alice))[SUBJECT_RENEWAL] == 2
    # The author has read what they wrote.
    assert (await _inbox_unread(martin))[SUBJECT_RENEWAL] == 0

    await messages.mark_read(alice, await thread_by_subject(SUBJECT_RENEWAL))
    assert (await _patient_unread(alice))[SUBJECT_RENEWAL] == 0
    state = await ReadState.get(user_id=alice.id, thread_id=thread.id)
    assert state.last_read_seq == 4


async def test_practitioner_unread_counts_follow_their_own_reading() -> None:
    martin, secretary = await user(MARTIN), await user(SECRETARIAT)
    assert await _inbox_unread(martin) == {SUBJECT_RENEWAL: 2, SUBJECT_CERTIFICATE: 1}
    await messages.mark_read(martin, await thread_by_subject(SUBJECT_CERTIFICATE))
    assert await _inbox_unread(martin) == {SUBJECT_RENEWAL: 2, SUBJECT_CERTIFICATE: 0}
    # Someone else's reading changes nothing for Dr Martin.
    await messages.mark_read(secretary, await thread_by_subject(SUBJECT_RENEWAL))
    assert (await _inbox_unread(martin))[SUBJECT_RENEWAL] == 2


async def test_mark_read_never_moves_read_state_backwards() -> None:
    alice, martin = await user(ALICE), await user(MARTIN)
    stale = await thread_by_subject(SUBJECT_RENEWAL)
    await messages.post_message(martin, await thread_by_subject(SUBJECT_RENEWAL), "Nouveau")
    await messages.mark_read(alice, await thread_by_subject(SUBJECT_RENEWAL))
    await messages.mark_read(alice, stale)  # a tab opened before the answer
    state = await ReadState.get(user_id=alice.id, thread_id=stale.id)
    assert state.last_read_seq == 3


async def test_inbox_lists_only_the_practitioners_threads() -> None:
    assert set(await _inbox_unread(await user(MARTIN))) == {SUBJECT_RENEWAL, SUBJECT_CERTIFICATE}
    assert set(await _inbox_unread(await user(BERNARD))) == {SUBJECT_RESULTS}


async def test_queue_lists_waiting_requests_of_the_practice_only() -> None:
    secretary = await user(SECRETARIAT)
    rows = await queries.queue_threads(secretary)
    # Pending ones, and open ones nobody holds; never another practice's, never closed ones.
    assert {row.thread.subject for row in rows} == {SUBJECT_RENEWAL, SUBJECT_CERTIFICATE}
    await threads.assign(secretary, await thread_by_subject(SUBJECT_RENEWAL), secretary.id)
    rows = await queries.queue_threads(secretary)
    assert {row.thread.subject for row in rows} == {SUBJECT_CERTIFICATE}


async def test_parallel_posts_cannot_exceed_the_minute_quota() -> None:
    # Two tabs, or a script, sending at once must not get past the limit that one sender meets.
    alice = await user(ALICE)
    accepted: list[int] = []

    async def post(n: int) -> None:
        try:
            await messages.post_message(alice, await thread_by_subject(SUBJECT_RENEWAL), f"#{n}")
        except Refused:
            return
        accepted.append(n)

    async with anyio.create_task_group() as group:
        for n in range(40):
            group.start_soon(post, n)
    assert len(accepted) >= 10
    assert len(accepted) <= quotas.DEFAULT_QUOTA.per_minute
    bodies = await Message.filter(author_id=alice.id).values_list("body", flat=True)
    assert sum(body.startswith("#") for body in bodies) == len(accepted)
