"""Password reset by an emailed one-time link.

The link carries 32 random bytes; only their SHA-256 is stored, so a copy of the database opens
no account. A link works once, for 30 minutes, and using one cancels the user's other links.
Setting the new password ends every session of the account: whoever got in with the old
password is out.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from server import outbox
from server.actions import audit
from server.i18n import gettext
from server.models import PasswordReset, Role, Session, User
from server.passwords import hash_password
from server.rules.passwords import MISMATCH, check_new_password
from server.rules.refusal import Refusal, Refused
from server.translatable import N_

# Long enough to read the email on another device, short enough that an old email in a
# mailbox opens nothing (OWASP Forgot Password Cheat Sheet).
LINK_LIFETIME = timedelta(minutes=30)
# token_urlsafe(32) is 43 characters; anything much longer is not one of ours.
_MAX_TOKEN_CHARS = 100

UNKNOWN_LINK = Refusal(
    "reset_link_unknown",
    N_(
        "This password reset link is not valid. Check that it was copied whole, "
        "or ask for a new one."
    ),
    400,
)
EXPIRED_LINK = Refusal(
    "reset_link_expired",
    N_("This password reset link has expired: links last 30 minutes. Please ask for a new one."),
    410,
)
USED_LINK = Refusal(
    "reset_link_used",
    N_(
        "This password reset link has already been used, or a newer one replaced it. "
        "Ask for a new one if you still need it."
    ),
    410,
)

EMAIL_SUBJECT = N_("Resetting your Colloque password")
EMAIL_BODY = N_(
    "Hello %(name)s,\n\n"
    "Someone, probably you, asked to reset the password of your Colloque account. "
    "To choose a new password, open this link within 30 minutes:\n\n"
    "%(link)s\n\n"
    "The link works only once. If you did not ask for this, ignore this email: "
    "your password stays as it is.\n\n"
    "Colloque"
)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


async def request_reset(
    email: str, link_for: Callable[[str], str], now: datetime | None = None
) -> None:
    """Email a reset link to `email` if it is an open account; do nothing otherwise.

    `link_for` turns the link's path into an absolute address. Callers answer the same way in
    both cases and should run this after answering, so that timing tells nothing either.
    """
    now = _now(now)
    user = await User.get_or_none(email=email, is_active=True, closed_at=None)
    if user is None:
        return
    token = secrets.token_urlsafe(32)
    await PasswordReset.create(
        user=user, token_hash=_token_hash(token), expires_at=now + LINK_LIFETIME
    )
    await audit.record_account(user, "password.reset_requested")
    body = gettext(user.locale, EMAIL_BODY) % {
        "name": user.display_name,
        "link": link_for(f"/password/reset/{token}"),
    }
    await outbox.send(
        outbox.Email(to=user.email, subject=gettext(user.locale, EMAIL_SUBJECT), body=body)
    )


async def find_reset(token: str, now: datetime | None = None) -> PasswordReset:
    """The reset `token` opens, with its user; raises Refused when it opens nothing."""
    now = _now(now)
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise Refused(UNKNOWN_LINK)
    reset = await PasswordReset.get_or_none(token_hash=_token_hash(token)).select_related("user")
    if reset is None or not reset.user.is_active or reset.user.closed_at is not None:
        raise Refused(UNKNOWN_LINK)
    if reset.used_at is not None:
        raise Refused(USED_LINK)
    if now >= reset.expires_at:
        raise Refused(EXPIRED_LINK)
    return reset


@dataclass(frozen=True)
class PasswordChanged:
    user_id: int
    email: str
    #: Sessions that were ended: their live streams must be told to close.
    ended_session_ids: list[int]


async def reset_password(
    token: str, password: str, confirmation: str, now: datetime | None = None
) -> PasswordChanged:
    """Set a new password through a reset link; raises Refused and changes nothing otherwise."""
    now = _now(now)
    reset = await find_reset(token, now)
    user = reset.user
    refusal = check_new_password(password, user.email)
    if refusal is None and password != confirmation:
        refusal = MISMATCH
    if refusal is not None:
        raise Refused(refusal)
    # Hashing is slow on purpose: do it before taking any lock.
    password_hash = await hash_password(password)
    async with in_transaction() as connection:
        # The link is spent by this update alone, so two submissions cannot both use it.
        spent = await (
            PasswordReset.filter(id=reset.id, used_at=None, expires_at__gt=now)
            .using_db(connection)
            .update(used_at=now)
        )
        if not spent:
            raise Refused(USED_LINK)
        await (
            PasswordReset.filter(user_id=user.id, used_at=None)
            .using_db(connection)
            .update(used_at=now)
        )
        await User.filter(id=user.id).using_db(connection).update(password_hash=password_hash)
        session_ids = list(
            await Session.filter(user_id=user.id).using_db(connection).values_list("id", flat=True)
        )
        await Session.filter(user_id=user.id).using_db(connection).delete()
        # In the transaction: no new password without its audit line.
        await audit.record(
            user.id,
            "password.reset",
            detail={"sessions_ended": len(session_ids)},
            using=connection,
            practice_id=user.practice_id,
            subject_user_id=user.id if user.role == Role.PATIENT else None,
            object=f"account:{user.id}",
        )
    return PasswordChanged(user.id, user.email, [int(i) for i in session_ids])
