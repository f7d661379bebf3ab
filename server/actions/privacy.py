"""A patient's rights over their data (GDPR): a copy of everything, and closing the account.

Closing anonymises the account but keeps the messages: what a patient wrote to their
practitioner is part of their medical record, which the practice must keep (French public
health code, article R1112-7: 20 years from the last visit). See README, "Data retention".
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from datetime import UTC, date, datetime
from typing import Any

from tortoise.transactions import in_transaction

from server import streams
from server.actions import audit
from server.models import (
    CareRelationship,
    Message,
    PasswordReset,
    ReadState,
    RecoveryCode,
    Role,
    Session,
    Thread,
    ThreadStatus,
    User,
)
from server.passwords import verify_password
from server.rules.refusal import Refusal, Refused
from server.translatable import N_

EXPORT_FORMAT = "colloque-export-1"
ANONYMISED_NAME = "Patient anonymisé"

STAFF_ACCOUNT = Refusal(
    "staff_account",
    N_(
        "A practice's staff accounts are not closed here: the practice administrator ends them,"
        " and the practice keeps what they wrote in its records."
    ),
    403,
)
WRONG_PASSWORD = Refusal(
    "wrong_password", N_("This is not your password. Your account is still open."), 403
)


def _when(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _author(message: Message, patient: User) -> str:
    if message.author_id == patient.id:
        return patient.display_name
    return message.author.display_name if message.author else "Colloque"


async def export_data(patient: User) -> dict[str, Any]:
    """Everything Colloque holds about `patient`, readable (decrypted), and nobody else's."""
    care = await CareRelationship.filter(patient_id=patient.id).select_related(
        "practitioner__practice"
    )
    threads = (
        await Thread.filter(patient_id=patient.id)
        .select_related("practice", "practitioner")
        .order_by("created_at", "id")
    )
    messages = (
        await Message.filter(thread__patient_id=patient.id)
        .select_related("author")
        .order_by("thread_id", "seq")
    )
    by_thread: dict[int, list[dict[str, Any]]] = {}
    for message in messages:
        by_thread.setdefault(message.thread_id, []).append(
            {
                "seq": message.seq,
                "kind": message.kind,
                "author": _author(message, patient),
                "written_by_you": message.author_id == patient.id,
                "created_at": _when(message.created_at),
                "body": message.body,
            }
        )
    reads = await ReadState.filter(user_id=patient.id).order_by("thread_id")
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _when(datetime.now(UTC)),
        "profile": {
            "id": patient.id,
            "email": patient.email,
            "display_name": patient.display_name,
            "role": patient.role,
            "locale": patient.locale,
            "created_at": _when(patient.created_at),
            "second_factor_enabled": patient.totp_enabled_at is not None,
        },
        "care_relationships": [
            {
                "practitioner": relation.practitioner.display_name,
                "practice": (
                    relation.practitioner.practice.name if relation.practitioner.practice else None
                ),
                "first_consultation": _when(relation.first_consultation),
                "last_consultation": _when(relation.last_consultation),
            }
            for relation in care
        ],
        "threads": [
            {
                "id": thread.id,
                "practice": thread.practice.name,
                "practitioner": thread.practitioner.display_name,
                "category": thread.category,
                "subject": thread.subject,
                "status": thread.status,
                "decline_reason": thread.decline_reason,
                "emergency": thread.emergency,
                "created_at": _when(thread.created_at),
                "last_message_at": _when(thread.last_message_at),
                "closed_at": _when(thread.closed_at),
                "messages": by_thread.get(thread.id, []),
            }
            for thread in threads
        ],
        "read_states": [
            {
                "thread_id": read.thread_id,
                "last_read_seq": read.last_read_seq,
                "updated_at": _when(read.updated_at),
            }
            for read in reads
        ],
    }


def archive(data: dict[str, Any], readable_html: str) -> bytes:
    """The download: `data.json` for programs, `index.html` for people."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("data.json", json.dumps(data, ensure_ascii=False, indent=2))
        bundle.writestr("index.html", readable_html)
    return buffer.getvalue()


async def record_export(patient: User) -> None:
    await audit.record_account(patient, "account.exported")


async def close_account(patient: User, password: str) -> list[int]:
    """Anonymise `patient`'s account after checking their password; returns the ids of the
    sessions it ended, which the caller closes on this process too.

    Kept: their threads and messages (the medical record). Gone: identity, password, second
    factor, sessions, reset links, care relationships, read marks. Their open requests are
    closed, and the staff who see them are told at once.
    """
    if patient.role != Role.PATIENT:
        raise Refused(STAFF_ACCOUNT)
    if not await verify_password(patient.password_hash, password):
        await audit.record_account(patient, "account.close", outcome=audit.DENIED)
        raise Refused(WRONG_PASSWORD)
    now = datetime.now(UTC)
    event: streams.Recorded | None = None
    async with in_transaction() as connection:
        session_ids = list(
            await Session.filter(user_id=patient.id)
            .using_db(connection)
            .values_list("id", flat=True)
        )
        await (
            User.filter(id=patient.id)
            .using_db(connection)
            .update(
                email=f"closed-{patient.id}@invalid",
                display_name=ANONYMISED_NAME,
                # Not an argon2 hash: no password can ever match it.
                password_hash=f"!closed:{secrets.token_hex(16)}",
                totp_secret=None,
                totp_enabled_at=None,
                totp_last_step=0,
                is_active=False,
                closed_at=now,
            )
        )
        for model in (Session, RecoveryCode, PasswordReset, ReadState):
            await model.filter(user_id=patient.id).using_db(connection).delete()
        await CareRelationship.filter(patient_id=patient.id).using_db(connection).delete()
        await audit.record_account(patient, "account.closed", using=connection)
        still_open = (
            await Thread.filter(
                patient_id=patient.id, status__in=(ThreadStatus.PENDING, ThreadStatus.OPEN)
            )
            .using_db(connection)
            .select_for_update()
        )
        for thread in still_open:
            await (
                Thread.filter(id=thread.id)
                .using_db(connection)
                .update(status=ThreadStatus.CLOSED, closed_at=now, updated_at=now)
            )
            await audit.record_thread(
                patient.id,
                "thread.closed",
                thread,
                {"status": ThreadStatus.CLOSED.value, "because": "account.closed"},
                using=connection,
            )
        # Events last: recording one holds the event log's ordering lock until commit.
        for thread in still_open:
            event = await streams.record(
                connection,
                "thread.status",
                streams.thread_audience(thread),
                thread_id=thread.id,
                data={"status": ThreadStatus.CLOSED.value},
            )
    if event is not None:
        await streams.announce(event)
    for session_id in session_ids:
        await streams.announce_session_end(session_id)
    return session_ids
