"""Ending every session of a user at once ("log out everywhere")."""

from __future__ import annotations

from server.actions import audit
from server.models import Session, User
from server.streams import announce_session_end


async def end_every_session(user: User) -> list[int]:
    """Delete all of the user's sessions, then tell every process to close their live streams.

    Returns the ids of the sessions that ended. Deleting first means a stream that re-checks
    its session before the announcement arrives finds it gone as well.
    """
    ended = list(await Session.filter(user_id=user.id).values_list("id", flat=True))
    await Session.filter(id__in=ended).delete()
    await audit.record_account(user, "logout.everywhere", detail={"sessions": len(ended)})
    for session_id in ended:
        await announce_session_end(session_id)
    return ended
