"""The audit trail: who read or changed what, who was refused, who logged in.

A line says who (account id), about which patient (a pseudonym), on what ("thread:12"), which
action, with what outcome, when (UTC) and for which practice. It never holds message content,
subjects, reasons, emails or passwords. The table is append-only (migration 0006): lines go
only by `purge_expired`, once past the retention period.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from server import sql
from server.models import AuditEvent, Role, Thread, User
from server.settings import load_settings

#: Audit lines are kept 12 months (CNIL guidance on access logs of health data systems: six
#: months to a year), then deleted by `colloque purge`. The database refuses earlier deletion.
RETENTION_MONTHS = 12

DENIED = "denied"
_OBJECT_CHARS = 64

_pseudonym_key: bytes | None = None


def _key() -> bytes:
    """SECRET_KEY, read once: a new key gives every patient a new pseudonym from then on."""
    global _pseudonym_key
    if _pseudonym_key is None:
        _pseudonym_key = load_settings().secret_key.encode()
    return _pseudonym_key


def pseudonym(patient_id: int) -> str:
    """A stable, keyed pseudonym of a patient: lines about one patient can be followed without
    the trail saying who they are. The prefix keeps it apart from other uses of the key."""
    mac = hmac.new(_key(), f"audit-subject:{patient_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


async def record(
    actor_id: int | None,
    action: str,
    thread_id: int | None = None,
    detail: dict[str, Any] | None = None,
    using: BaseDBAsyncClient | None = None,
    *,
    practice_id: int | None = None,
    subject_user_id: int | None = None,
    object: str | None = None,
    outcome: str = "ok",
) -> None:
    """Write one audit line. `detail` holds non-content facts only (a status, an id)."""
    if object is None:
        object = thread_object(thread_id) if thread_id is not None else ""
    await AuditEvent.create(
        actor_id=actor_id,
        action=action,
        thread_id=thread_id,
        practice_id=practice_id,
        subject=pseudonym(subject_user_id) if subject_user_id is not None else "",
        object=object[:_OBJECT_CHARS],
        outcome=outcome,
        detail=detail or {},
        using_db=using,
    )


def thread_object(thread_id: int) -> str:
    return f"thread:{thread_id}"[:_OBJECT_CHARS]


async def record_thread(
    actor_id: int | None,
    action: str,
    thread: Thread,
    detail: dict[str, Any] | None = None,
    using: BaseDBAsyncClient | None = None,
    *,
    outcome: str = "ok",
) -> None:
    """A line about a thread: its practice and its patient come from the thread itself."""
    await record(
        actor_id,
        action,
        thread.id,
        detail,
        using,
        practice_id=thread.practice_id,
        subject_user_id=thread.patient_id,
        outcome=outcome,
    )


async def record_account(
    user: User,
    action: str,
    *,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    using: BaseDBAsyncClient | None = None,
) -> None:
    """A line about someone's own account (login, logout, export, closing)."""
    await record(
        user.id,
        action,
        detail=detail,
        using=using,
        practice_id=user.practice_id,
        subject_user_id=user.id if user.role == Role.PATIENT else None,
        object=f"account:{user.id}",
        outcome=outcome,
    )


async def record_refusal(
    user: User | None, action: str, object: str, detail: dict[str, Any] | None = None
) -> None:
    """A refused request: a role kept out, a CSRF token missing, a handshake turned away."""
    await record(
        user.id if user else None,
        action,
        detail=detail,
        practice_id=user.practice_id if user else None,
        object=object,
        outcome=DENIED,
    )


def retention_cutoff_sql(connection: BaseDBAsyncClient) -> str:
    """The retention limit as the database computes it, the very expression its trigger uses,
    so that a purge never asks for a row the trigger would still protect."""
    if sql.is_postgres(connection):
        return f"now() - interval '{RETENTION_MONTHS} months'"
    return f"julianday('now', '-{RETENTION_MONTHS} months')"


async def purge_expired() -> int:
    """Delete the lines older than the retention period; returns how many went."""
    async with in_transaction() as connection:
        cutoff = retention_cutoff_sql(connection)
        if sql.is_postgres(connection):
            # The trigger lets a row go only inside a transaction that says it is purging.
            await connection.execute_script("SET LOCAL colloque.audit_purge = 'on'")
            where = f"created_at < {cutoff}"
        else:
            where = f"julianday(created_at) < {cutoff}"
        # Only constants above: no input reaches this statement.
        count, _ = await connection.execute_query(f"DELETE FROM audit_event WHERE {where}")  # noqa: S608
    return int(count)


async def trail_for_practice(
    practice_id: int, start: datetime, end: datetime, after_id: int, limit: int
) -> list[AuditEvent]:
    """One page of a practice's trail in [start, end), in id order, after `after_id`."""
    return (
        await AuditEvent.filter(
            practice_id=practice_id, created_at__gte=start, created_at__lt=end, id__gt=after_id
        )
        .order_by("id")
        .limit(limit)
    )
