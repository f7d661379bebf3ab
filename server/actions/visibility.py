"""Loading a thread for someone, or answering as if it did not exist."""

from __future__ import annotations

from starlette.exceptions import HTTPException

from server import joined
from server.actions import audit
from server.models import Role, Thread, User
from server.rules.access import ThreadParties, Viewer, can_read_content, can_see_thread

#: What showing a thread needs besides its own row.
THREAD_RELATIONS = ("practice", "patient", "practitioner", "assignee")


def viewer_of(user: User) -> Viewer:
    return Viewer(user_id=user.id, role=Role(user.role), practice_id=user.practice_id)


def parties_of(thread: Thread) -> ThreadParties:
    return ThreadParties(
        patient_id=thread.patient_id,
        practitioner_id=thread.practitioner_id,
        practice_id=thread.practice_id,
        assignee_id=thread.assignee_id,
    )


async def thread_for(user: User, thread_id: object) -> Thread:
    """The thread if `user` may see it; 404 otherwise, so its existence is not revealed.

    A refusal is audited: for the thread's practice when it exists (its data was asked for),
    the caller's otherwise.
    """
    if not isinstance(thread_id, int) or thread_id <= 0 or thread_id > 2**31 - 1:
        await audit.record_refusal(user, "thread.denied", "thread:invalid")
        raise HTTPException(404)
    found = await joined.select(Thread, THREAD_RELATIONS, "main.id = ?", thread_id)
    thread = found[0] if found else None
    if thread is None:
        await audit.record_refusal(user, "thread.denied", f"thread:{thread_id}")
        raise HTTPException(404)
    if not can_see_thread(viewer_of(user), parties_of(thread)):
        await audit.record_thread(user.id, "thread.denied", thread, outcome=audit.DENIED)
        raise HTTPException(404)
    return thread


def may_read_content(user: User, thread: Thread) -> bool:
    return can_read_content(
        viewer_of(user), parties_of(thread), thread.practice.mask_content_for_secretaries
    )
