"""server.rules.thread_states: which status changes are allowed, and who may post. Pure."""

from __future__ import annotations

import pytest

from server.models import Category, Role, ThreadStatus
from server.rules.thread_states import (
    ALREADY_CLOSED,
    AWAITING_ACCEPTANCE,
    NOT_PENDING,
    NOT_YOUR_DECISION,
    REASON_REQUIRED,
    THREAD_CLOSED,
    THREAD_DECLINED,
    check_close,
    check_decide,
    check_decline,
    check_post,
)

NOT_PENDING_STATUSES = (ThreadStatus.OPEN, ThreadStatus.CLOSED, ThreadStatus.DECLINED)


@pytest.mark.parametrize("category", list(Category))
def test_practitioner_decides_any_pending_request(category: Category) -> None:
    assert check_decide(ThreadStatus.PENDING, category, Role.PRACTITIONER) is None


@pytest.mark.parametrize("role", [Role.SECRETARY, Role.ADMIN])
def test_secretary_decides_administrative_requests(role: Role) -> None:
    assert check_decide(ThreadStatus.PENDING, Category.ADMIN, role) is None


@pytest.mark.parametrize(
    "category", [Category.QUESTION, Category.RENEWAL, Category.RESULTS, Category.OTHER]
)
@pytest.mark.parametrize("role", [Role.SECRETARY, Role.ADMIN])
def test_secretary_may_not_decide_medical_requests(category: Category, role: Role) -> None:
    assert check_decide(ThreadStatus.PENDING, category, role) is NOT_YOUR_DECISION


@pytest.mark.parametrize("status", NOT_PENDING_STATUSES)
def test_only_a_pending_request_can_be_decided(status: ThreadStatus) -> None:
    assert check_decide(status, Category.ADMIN, Role.PRACTITIONER) is NOT_PENDING


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_decline_needs_a_reason(reason: str) -> None:
    refusal = check_decline(ThreadStatus.PENDING, Category.QUESTION, Role.PRACTITIONER, reason)
    assert refusal is REASON_REQUIRED
    assert refusal.status == 400


def test_decline_with_a_reason_is_allowed() -> None:
    assert (
        check_decline(
            ThreadStatus.PENDING, Category.QUESTION, Role.PRACTITIONER, "Consultation needed"
        )
        is None
    )


def test_decline_checks_the_decision_before_the_reason() -> None:
    assert check_decline(ThreadStatus.OPEN, Category.ADMIN, Role.PRACTITIONER, "") is NOT_PENDING
    assert (
        check_decline(ThreadStatus.PENDING, Category.RESULTS, Role.SECRETARY, "x")
        is NOT_YOUR_DECISION
    )


@pytest.mark.parametrize("role", [Role.PRACTITIONER, Role.SECRETARY, Role.ADMIN])
@pytest.mark.parametrize("status", [ThreadStatus.PENDING, ThreadStatus.OPEN])
def test_staff_close_pending_and_open_threads(status: ThreadStatus, role: Role) -> None:
    assert check_close(status, role) is None


@pytest.mark.parametrize("status", [ThreadStatus.CLOSED, ThreadStatus.DECLINED])
def test_closed_or_declined_threads_cannot_be_closed_again(status: ThreadStatus) -> None:
    assert check_close(status, Role.PRACTITIONER) is ALREADY_CLOSED


@pytest.mark.parametrize("status", list(ThreadStatus))
def test_a_patient_neither_closes_nor_decides(status: ThreadStatus) -> None:
    assert check_close(status, Role.PATIENT) is NOT_YOUR_DECISION
    for category in Category:
        assert check_decide(status, category, Role.PATIENT) is NOT_YOUR_DECISION


@pytest.mark.parametrize("status", [ThreadStatus.PENDING, ThreadStatus.OPEN])
def test_patient_posts_in_pending_and_open_threads(status: ThreadStatus) -> None:
    assert check_post(status, Role.PATIENT) is None


@pytest.mark.parametrize("role", list(Role))
def test_nobody_posts_in_a_closed_thread(role: Role) -> None:
    assert check_post(ThreadStatus.CLOSED, role) is THREAD_CLOSED


@pytest.mark.parametrize("role", list(Role))
def test_nobody_posts_in_a_declined_thread(role: Role) -> None:
    assert check_post(ThreadStatus.DECLINED, role) is THREAD_DECLINED


@pytest.mark.parametrize("role", [Role.PRACTITIONER, Role.SECRETARY, Role.ADMIN])
def test_staff_answer_only_once_accepted(role: Role) -> None:
    assert check_post(ThreadStatus.PENDING, role) is AWAITING_ACCEPTANCE
    assert check_post(ThreadStatus.OPEN, role) is None


def test_refusal_statuses() -> None:
    assert NOT_PENDING.status == 409
    assert NOT_YOUR_DECISION.status == 403
    assert THREAD_CLOSED.status == 409
    assert THREAD_DECLINED.status == 409
    assert AWAITING_ACCEPTANCE.status == 409
