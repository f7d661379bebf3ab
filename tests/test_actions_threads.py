"""server.actions.threads against the database: opening, deciding on, closing and assigning."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable

import anyio
import pytest
from core_support import (
    ALICE,
    BERNARD,
    BOB,
    CHLOE,
    MARTIN,
    PETIT,
    SECRETARIAT,
    SUBJECT_CERTIFICATE,
    SUBJECT_FLU,
    SUBJECT_RENEWAL,
    SUBJECT_RESULTS,
    thread_by_subject,
    user,
)
from starlette.exceptions import HTTPException

from server.actions import threads
from server.actions.visibility import thread_for
from server.models import (
    Message,
    MessageKind,
    MessagingSettings,
    ReadState,
    Thread,
    ThreadStatus,
    User,
)
from server.rules.refusal import Refused

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]


async def _counts() -> tuple[int, int]:
    return await Thread.all().count(), await Message.all().count()


async def _refused(code: str, call: Awaitable[object]) -> None:
    """Await `call`, expect a refusal with `code`, and check that nothing was written."""
    before = await _counts()
    with pytest.raises(Refused) as caught:
        await call
    assert caught.value.refusal.code == code
    assert await _counts() == before


async def _settings(email: str) -> MessagingSettings:
    return await MessagingSettings.get(practitioner__email=email)


# --- open_request -----------------------------------------------------------------------------


async def test_open_request_creates_a_pending_thread_and_its_first_message() -> None:
    alice, martin = await user(ALICE), await user(MARTIN)
    thread = await threads.open_request(
        alice, martin.id, "question", "Douleur au genou", "J'ai mal au genou depuis lundi."
    )
    stored = await Thread.get(id=thread.id)
    assert stored.status == ThreadStatus.PENDING
    assert stored.patient_id == alice.id
    assert stored.practitioner_id == martin.id
    assert stored.practice_id == martin.practice_id
    assert stored.category == "question"
    assert stored.subject == "Douleur au genou"
    assert stored.last_seq == 1
    assert stored.assignee_id is None
    messages = await Message.filter(thread_id=thread.id).order_by("seq")
    assert [(m.seq, m.kind, m.author_id, m.body) for m in messages] == [
        (1, MessageKind.PATIENT, alice.id, "J'ai mal au genou depuis lundi.")
    ]
    # The patient has read what they wrote.
    state = await ReadState.get(user_id=alice.id, thread_id=thread.id)
    assert state.last_read_seq == 1


async def test_open_request_adds_the_away_message_as_a_system_message() -> None:
    settings = await _settings(MARTIN)
    settings.away_message = "Je suis absente jusqu'au 12, le Dr Bernard me remplace."
    await settings.save()
    alice, martin = await user(ALICE), await user(MARTIN)
    thread = await threads.open_request(alice, martin.id, "renewal", "Ordonnance", "Bonjour")
    messages = await Message.filter(thread_id=thread.id).order_by("seq")
    assert [(m.seq, m.kind, m.author_id, m.body) for m in messages] == [
        (1, MessageKind.PATIENT, alice.id, "Bonjour"),
        (2, MessageKind.SYSTEM, None, "Je suis absente jusqu'au 12, le Dr Bernard me remplace."),
    ]
    assert (await Thread.get(id=thread.id)).last_seq == 2
    # The away reply was delivered with the request: nothing unread for the patient.
    assert (await ReadState.get(user_id=alice.id, thread_id=thread.id)).last_read_seq == 2


async def test_blank_away_message_adds_nothing() -> None:
    settings = await _settings(MARTIN)
    settings.away_message = "   "
    await settings.save()
    thread = await threads.open_request(
        await user(ALICE), (await user(MARTIN)).id, "other", "Sujet", "Corps"
    )
    assert await Message.filter(thread_id=thread.id).count() == 1


@pytest.mark.parametrize(
    ("patient", "practitioner"),
    [(BOB, MARTIN), (CHLOE, MARTIN), (ALICE, PETIT), (BOB, PETIT), (CHLOE, BERNARD)],
)
async def test_a_patient_may_only_write_to_a_practitioner_they_consulted(
    patient: str, practitioner: str
) -> None:
    doctor = await user(practitioner)
    await _refused(
        "not_consulted",
        threads.open_request(await user(patient), doctor.id, "question", "Bonjour", "Bonjour"),
    )


async def test_messaging_off_is_refused_dr_bernard() -> None:
    bernard = await user(BERNARD)
    for patient in (ALICE, BOB):
        await _refused(
            "messaging_off",
            threads.open_request(await user(patient), bernard.id, "question", "Sujet", "Corps"),
        )


async def test_not_accepting_new_requests_is_refused() -> None:
    settings = await _settings(MARTIN)
    settings.accepting_requests = False
    await settings.save()
    await _refused(
        "not_accepting",
        threads.open_request(
            await user(ALICE), (await user(MARTIN)).id, "question", "Sujet", "Corps"
        ),
    )


@pytest.mark.parametrize("target", ["nobody", "unknown", "patient", "secretary", "inactive"])
async def test_unknown_or_non_practitioner_targets_are_refused(target: str) -> None:
    martin = await user(MARTIN)
    if target == "inactive":
        await User.filter(id=martin.id).update(is_active=False)
    ids = {
        "nobody": None,
        "unknown": 987_654,
        "patient": (await user(BOB)).id,
        "secretary": (await user(SECRETARIAT)).id,
        "inactive": martin.id,
    }
    await _refused(
        "not_consulted",
        threads.open_request(await user(ALICE), ids[target], "question", "Sujet", "Corps"),
    )


@pytest.mark.parametrize(
    ("category", "subject", "body", "code"),
    [
        ("urgent", "Sujet", "Corps", "bad_category"),
        ("", "Sujet", "Corps", "bad_category"),
        ("question", "", "Corps", "empty_subject"),
        ("question", "s" * 151, "Corps", "subject_too_long"),
        ("question", "Sujet", "", "empty_body"),
        ("question", "Sujet", "b" * 5001, "body_too_long"),
    ],
)
async def test_open_request_validates_what_was_typed(
    category: str, subject: str, body: str, code: str
) -> None:
    martin = await user(MARTIN)
    await _refused(
        code, threads.open_request(await user(ALICE), martin.id, category, subject, body)
    )


async def test_a_patient_may_have_at_least_three_open_requests() -> None:
    # Contract floor. Alice already has two requests with Dr Martin (one open, one pending).
    alice, martin = await user(ALICE), await user(MARTIN)
    thread = await threads.open_request(alice, martin.id, "question", "Troisième", "Bonjour")
    assert thread.status == ThreadStatus.PENDING
    open_now = await Thread.filter(
        patient_id=alice.id, status__in=(ThreadStatus.PENDING, ThreadStatus.OPEN)
    ).count()
    assert open_now == 3


async def test_too_many_open_requests_is_refused_at_the_practitioner_maximum() -> None:
    alice, martin = await user(ALICE), await user(MARTIN)
    maximum = (await _settings(MARTIN)).max_open_requests_per_patient
    assert maximum >= 3
    opened = await Thread.filter(patient_id=alice.id, practitioner_id=martin.id).count()
    while opened < maximum:
        await threads.open_request(alice, martin.id, "question", f"Demande {opened}", "Bonjour")
        opened += 1
    await _refused(
        "too_many_open_requests",
        threads.open_request(alice, martin.id, "question", "Une de trop", "Bonjour"),
    )
    # Closing one frees a place.
    await threads.close(martin, await thread_by_subject(SUBJECT_RENEWAL))
    await threads.open_request(alice, martin.id, "question", "Encore une", "Bonjour")


async def test_open_request_limit_counts_per_practitioner_and_only_open_threads() -> None:
    settings = await _settings(MARTIN)
    settings.max_open_requests_per_patient = 2
    await settings.save()
    alice, martin = await user(ALICE), await user(MARTIN)
    # Alice has two open requests with Dr Martin: the third is refused...
    await _refused(
        "too_many_open_requests",
        threads.open_request(alice, martin.id, "question", "Sujet", "Corps"),
    )
    # ...a declined one no longer counts.
    await threads.decline(martin, await thread_by_subject(SUBJECT_CERTIFICATE), "Venez au cabinet")
    await threads.open_request(alice, martin.id, "question", "Sujet", "Corps")


async def test_chloe_may_open_requests_with_dr_petit_up_to_three_at_once() -> None:
    chloe, petit = await user(CHLOE), await user(PETIT)
    for n in range(2):
        await threads.open_request(chloe, petit.id, "question", f"Question {n}", "Bonjour")
    assert await Thread.filter(patient_id=chloe.id, status__in=threads.OPEN_STATUSES).count() == 3


# --- accept and decline -----------------------------------------------------------------------


async def test_practitioner_accepts_a_pending_request() -> None:
    martin = await user(MARTIN)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    await threads.accept(martin, thread)
    assert (await Thread.get(id=thread.id)).status == ThreadStatus.OPEN


async def test_decline_needs_a_reason_and_stores_it() -> None:
    martin = await user(MARTIN)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    for blank in ("", "   "):
        with pytest.raises(Refused) as caught:
            await threads.decline(martin, thread, blank)
        assert caught.value.refusal.code == "reason_required"
        assert (await Thread.get(id=thread.id)).status == ThreadStatus.PENDING
    await threads.decline(martin, thread, "Un certificat demande une consultation.")
    stored = await Thread.get(id=thread.id)
    assert stored.status == ThreadStatus.DECLINED
    assert stored.decline_reason == "Un certificat demande une consultation."
    assert stored.closed_at is not None


async def test_decline_reason_over_a_thousand_characters_is_refused() -> None:
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    with pytest.raises(Refused) as caught:
        await threads.decline(await user(MARTIN), thread, "r" * 1001)
    assert caught.value.refusal.code == "reason_too_long"
    assert (await Thread.get(id=thread.id)).status == ThreadStatus.PENDING


@pytest.mark.parametrize("decision", ["accept", "decline"])
async def test_secretary_decides_an_administrative_request(decision: str) -> None:
    secretary = await user(SECRETARIAT)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    assert thread.category == "admin"
    if decision == "accept":
        await threads.accept(secretary, thread)
        expected = ThreadStatus.OPEN
    else:
        await threads.decline(secretary, thread, "Merci de passer au secrétariat.")
        expected = ThreadStatus.DECLINED
    assert (await Thread.get(id=thread.id)).status == expected


@pytest.mark.parametrize("category", ["question", "renewal", "results", "other"])
async def test_secretary_may_not_decide_a_medical_request(category: str) -> None:
    alice, martin, secretary = await user(ALICE), await user(MARTIN), await user(SECRETARIAT)
    await threads.open_request(alice, martin.id, category, "Médical", "Bonjour")
    thread = await thread_by_subject("Médical")
    for decide in (
        lambda: threads.accept(secretary, thread),
        lambda: threads.decline(secretary, thread, "Non"),
    ):
        with pytest.raises(Refused) as caught:
            await decide()
        assert caught.value.refusal.code == "not_your_decision"
    assert (await Thread.get(id=thread.id)).status == ThreadStatus.PENDING
    # Its practitioner can.
    await threads.accept(martin, thread)
    assert (await Thread.get(id=thread.id)).status == ThreadStatus.OPEN


@pytest.mark.parametrize("subject", [SUBJECT_RENEWAL, SUBJECT_RESULTS, SUBJECT_FLU])
async def test_only_pending_requests_can_be_decided(subject: str) -> None:
    thread = await thread_by_subject(subject)
    doctor = await User.get(id=thread.practitioner_id)
    before = thread.status
    for decide in (
        lambda: threads.accept(doctor, thread),
        lambda: threads.decline(doctor, thread, "Non"),
    ):
        with pytest.raises(Refused) as caught:
            await decide()
        assert caught.value.refusal.code == "not_pending"
    assert (await Thread.get(id=thread.id)).status == before


async def test_two_staff_deciding_at_once_cannot_both_succeed() -> None:
    martin, secretary = await user(MARTIN), await user(SECRETARIAT)
    seen_by_martin = await thread_by_subject(SUBJECT_CERTIFICATE)
    seen_by_secretary = await thread_by_subject(SUBJECT_CERTIFICATE)
    await threads.accept(martin, seen_by_martin)
    with pytest.raises(Refused):
        await threads.decline(secretary, seen_by_secretary, "Trop tard")
    stored = await Thread.get(id=seen_by_martin.id)
    assert stored.status == ThreadStatus.OPEN
    assert stored.decline_reason == ""


# --- close ------------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", [SUBJECT_RENEWAL, SUBJECT_CERTIFICATE])
async def test_staff_close_a_pending_or_open_thread(subject: str) -> None:
    thread = await thread_by_subject(subject)
    await threads.close(await user(SECRETARIAT), thread)
    stored = await Thread.get(id=thread.id)
    assert stored.status == ThreadStatus.CLOSED
    assert stored.closed_at is not None


async def test_closing_a_closed_thread_is_refused() -> None:
    thread = await thread_by_subject(SUBJECT_RESULTS)
    with pytest.raises(Refused) as caught:
        await threads.close(await user(BERNARD), thread)
    assert caught.value.refusal.code == "already_closed"


async def test_closing_a_declined_thread_is_refused_and_keeps_it_declined() -> None:
    martin = await user(MARTIN)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    await threads.decline(martin, thread, "Motif")
    with pytest.raises(Refused):
        await threads.close(martin, await thread_by_subject(SUBJECT_CERTIFICATE))
    assert (await Thread.get(id=thread.id)).status == ThreadStatus.DECLINED


async def test_closing_from_a_stale_page_does_not_reopen_or_overwrite() -> None:
    martin = await user(MARTIN)
    first = await thread_by_subject(SUBJECT_CERTIFICATE)
    stale = await thread_by_subject(SUBJECT_CERTIFICATE)
    await threads.decline(martin, first, "Motif du refus")
    with pytest.raises(Refused):
        await threads.close(martin, stale)
    stored = await Thread.get(id=first.id)
    assert (stored.status, stored.decline_reason) == (ThreadStatus.DECLINED, "Motif du refus")


# --- assign -----------------------------------------------------------------------------------


async def test_assigning_to_a_colleague_lets_them_see_the_thread() -> None:
    bernard, secretary = await user(BERNARD), await user(SECRETARIAT)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    with pytest.raises(HTTPException) as hidden:
        await thread_for(bernard, thread.id)
    assert hidden.value.status_code == 404

    await threads.assign(secretary, thread, bernard.id)
    assert (await Thread.get(id=thread.id)).assignee_id == bernard.id
    assert (await thread_for(bernard, thread.id)).id == thread.id

    await threads.assign(secretary, thread, None)
    assert (await Thread.get(id=thread.id)).assignee_id is None
    with pytest.raises(HTTPException):
        await thread_for(bernard, thread.id)


@pytest.mark.parametrize("who", [PETIT, ALICE, "unknown"])
async def test_assignee_must_belong_to_the_practice_team(who: str) -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    assignee_id = 987_654 if who == "unknown" else (await user(who)).id
    with pytest.raises(Refused) as caught:
        await threads.assign(await user(SECRETARIAT), thread, assignee_id)
    assert caught.value.refusal.code == "bad_assignee"
    assert (await Thread.get(id=thread.id)).assignee_id is None


async def test_assignment_to_a_secretary_is_allowed() -> None:
    secretary = await user(SECRETARIAT)
    thread = await thread_by_subject(SUBJECT_CERTIFICATE)
    await threads.assign(await user(MARTIN), thread, secretary.id)
    assert (await Thread.get(id=thread.id)).assignee_id == secretary.id


async def test_parallel_requests_cannot_exceed_the_open_request_maximum() -> None:
    chloe, petit = await user(CHLOE), await user(PETIT)
    maximum = (await _settings(PETIT)).max_open_requests_per_patient

    async def request(n: int) -> None:
        with contextlib.suppress(Refused):
            await threads.open_request(chloe, petit.id, "question", f"En parallèle {n}", "Bonjour")

    async with anyio.create_task_group() as group:
        for n in range(10):
            group.start_soon(request, n)
    open_now = await Thread.filter(patient_id=chloe.id, status__in=threads.OPEN_STATUSES).count()
    assert open_now == maximum
