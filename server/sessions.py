"""Server-side sessions: the cookie carries a signed random key, the database the session."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server import joined
from server.models import Session, User

# OWASP ASVS 5.0 (7.3): idle and absolute timeouts. 30 minutes idle suits a shared family
# device, 12 hours absolute covers a practice's working day without a new login.
IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# Writing last_seen_at on every request would turn each page view into a database write.
_TOUCH_EVERY = timedelta(minutes=1)


def sign(secret_key: str, value: str) -> str:
    mac = hmac.new(secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()
    return f"{value}.{mac}"


def unsign(secret_key: str, signed: str | None) -> str | None:
    """The value inside a signed cookie, or None if it was not signed with our key."""
    if not signed or "." not in signed:
        return None
    value, mac = signed.rsplit(".", 1)
    expected = hmac.new(secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()
    return value if hmac.compare_digest(mac, expected) else None


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ActiveSession:
    key: str
    session_id: int
    user: User


async def start_session(user: User) -> str:
    """Create a session and return its fresh random key (a new id at every login)."""
    key = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    await Session.create(
        key_hash=_key_hash(key), user=user, last_seen_at=now, expires_at=now + ABSOLUTE_TIMEOUT
    )
    return key


async def load_session(key: str) -> ActiveSession | None:
    """The live session for `key`, or None if unknown, expired, idle too long or user disabled."""
    # The practice comes along: every page checks its second-factor policy for staff.
    found = await joined.select(
        Session, ("user", "user__practice"), "main.key_hash = ?", _key_hash(key)
    )
    if not found:
        return None
    session = found[0]
    now = datetime.now(UTC)
    if now >= session.expires_at or now - session.last_seen_at >= IDLE_TIMEOUT:
        await session.delete()
        return None
    if not session.user.is_active:
        return None
    if now - session.last_seen_at >= _TOUCH_EVERY:
        await Session.filter(id=session.id).update(last_seen_at=now)
    return ActiveSession(key=key, session_id=session.id, user=session.user)


async def end_session(key: str) -> None:
    await Session.filter(key_hash=_key_hash(key)).delete()


async def purge_expired_sessions() -> int:
    """Delete sessions past either timeout; returns how many went."""
    now = datetime.now(UTC)
    return (
        await Session.filter(expires_at__lte=now).delete()
        + await Session.filter(last_seen_at__lte=now - IDLE_TIMEOUT).delete()
    )
