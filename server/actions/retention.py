"""`colloque purge`: what Colloque keeps only for a while goes once its time is up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.expressions import Q

from server.actions import audit
from server.models import PasswordReset
from server.sessions import purge_expired_sessions


@dataclass(frozen=True)
class Purged:
    audit_lines: int
    sessions: int
    password_resets: int

    def __str__(self) -> str:
        return (
            f"purged {self.audit_lines} audit lines older than {audit.RETENTION_MONTHS} months,"
            f" {self.sessions} expired sessions,"
            f" {self.password_resets} used or expired password resets"
        )


async def purge() -> Purged:
    """Delete what is past its retention period; running it again deletes nothing more."""
    # A reset link is worth nothing once used or expired: only its hash remains, so keeping
    # it would only say when someone forgot their password.
    resets = await PasswordReset.filter(
        Q(used_at__isnull=False) | Q(expires_at__lte=datetime.now(UTC))
    ).delete()
    return Purged(
        audit_lines=await audit.purge_expired(),
        sessions=await purge_expired_sessions(),
        password_resets=resets,
    )
