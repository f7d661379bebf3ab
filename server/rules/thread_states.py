"""Which changes a thread's status allows, and who may post in it."""

from __future__ import annotations

from server.models import Category, Role, ThreadStatus
from server.rules.refusal import Refusal
from server.translatable import N_

NOT_PENDING = Refusal(
    "not_pending",
    N_("This request has already been handled."),
)
ALREADY_CLOSED = Refusal(
    "already_closed",
    N_("This conversation is already closed."),
)
THREAD_CLOSED = Refusal(
    "thread_closed",
    N_("This conversation is closed. You can send a new request if you need to."),
)
THREAD_DECLINED = Refusal(
    "thread_declined",
    N_("This request was declined. You can send a new request if you need to."),
)
AWAITING_ACCEPTANCE = Refusal(
    "awaiting_acceptance",
    N_("Accept the request before answering it."),
)
NOT_YOUR_DECISION = Refusal(
    "not_your_decision",
    N_("Only the practitioner can accept or decline a medical request."),
    403,
)
REASON_REQUIRED = Refusal("reason_required", N_("Please give the patient a reason."), 400)


def check_decide(status: ThreadStatus, category: Category, actor_role: Role) -> Refusal | None:
    """Accept or decline: only a pending request, by its practitioner, or by the practice's
    secretaries when the request is administrative."""
    if actor_role is Role.PATIENT:
        return NOT_YOUR_DECISION
    if status is not ThreadStatus.PENDING:
        return NOT_PENDING
    if actor_role is not Role.PRACTITIONER and category is not Category.ADMIN:
        return NOT_YOUR_DECISION
    return None


def check_decline(
    status: ThreadStatus, category: Category, actor_role: Role, reason: str
) -> Refusal | None:
    """A decline is a decision that also needs a reason the patient will read."""
    return check_decide(status, category, actor_role) or (
        REASON_REQUIRED if not reason.strip() else None
    )


def check_close(status: ThreadStatus, actor_role: Role) -> Refusal | None:
    """Staff close a conversation; a patient who is done simply stops writing."""
    if actor_role is Role.PATIENT:
        return NOT_YOUR_DECISION
    if status in (ThreadStatus.CLOSED, ThreadStatus.DECLINED):
        return ALREADY_CLOSED
    return None


def check_post(status: ThreadStatus, author_role: Role) -> Refusal | None:
    """A patient may add to their pending or open request; staff answer only once accepted."""
    if status is ThreadStatus.CLOSED:
        return THREAD_CLOSED
    if status is ThreadStatus.DECLINED:
        return THREAD_DECLINED
    if author_role is not Role.PATIENT and status is ThreadStatus.PENDING:
        return AWAITING_ACCEPTANCE
    return None
