"""Health data is encrypted in the database and read back as text everywhere the code reads it.

Runs on the backend of the matrix (SQLite file, or PostgreSQL with DATABASE_URL).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import (
    ALICE,
    MARTIN,
    SUBJECT_RENEWAL,
    ClientFactory,
    login,
    thread_by_subject,
    user,
)
from tortoise import connections

from server import crypto, queries, sql
from server.actions import key_rotation
from server.actions.key_rotation import RotationError, rotate_keys
from server.crypto import DecryptionError, Keyring
from server.encrypted_fields import EncryptedColumnFilter
from server.live.batch import preload
from server.models import Message, MessageKind, StreamEvent, Thread
from server.settings import DEVELOPMENT_DATA_KEY, Settings
from workers.triage.worker import assess_message

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]

NEW_KEY = ("new", os.urandom(32))
CARDIAC = (
    "J'ai une douleur dans la poitrine qui serre et mon bras gauche est engourdi depuis 20 minutes"
)


@pytest.fixture
def keyring_restored() -> Iterator[None]:
    """Tests that install another keyring leave the development one for the next test."""
    before = crypto.active_keyring()
    try:
        yield
    finally:
        crypto.use_keyring(before)


async def _raw(query: str, *params: Any) -> list[dict[str, Any]]:
    """SQL straight to the database, past the model's conversion."""
    return await sql.fetch(connections.get("default"), query, *params)


async def _stored_body(message_id: int) -> str:
    return str((await _raw("SELECT body FROM message WHERE id = ?", message_id))[0]["body"])


async def _everything_stored(settings: Settings) -> bytes:
    """Every byte the database holds: the SQLite files, or each row of each PostgreSQL table."""
    url = settings.database_url
    if url.startswith("sqlite://"):
        path = Path(url.removeprefix("sqlite://"))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
        return b"".join(file.read_bytes() for file in files if file.exists())
    import asyncpg

    connection = await asyncpg.connect("postgres://" + url.split("://", 1)[1])
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        text = []
        for (table,) in tables:
            # A whole row cast to text shows every column, JSON ones included.
            rows = await connection.fetch(f'SELECT t::text FROM "{table}" AS t')  # noqa: S608
            text.extend(row[0] for row in rows)
        return "\n".join(text).encode()
    finally:
        await connection.close()


# --- nothing in clear in the database -----------------------------------------------------------


async def test_no_canary_reaches_the_database_in_clear(
    db: Settings, new_client: ClientFactory
) -> None:
    tag = uuid.uuid4().hex[:12]
    canaries = {
        "subject": f"canari-sujet-{tag}",
        "body": f"canari-corps-{tag}",
        "message": f"canari-message-{tag}",
        "reason": f"canari-motif-{tag}",
        "totp": f"CANARITOTP{tag.upper()}",
    }
    patient, doctor = await new_client(), await new_client()
    token = await login(patient, ALICE)
    created = await patient.post(
        "/threads",
        data={
            "practitioner_id": str((await user(MARTIN)).id),
            "category": "question",
            "subject": canaries["subject"],
            "body": canaries["body"],
            "csrf_token": token,
        },
    )
    assert created.status_code == 303
    thread_path = created.headers["location"]
    renewal = await thread_by_subject(SUBJECT_RENEWAL)
    posted = await patient.post(
        f"/threads/{renewal.id}/messages",
        data={"body": canaries["message"], "csrf_token": token},
    )
    assert posted.status_code == 303
    declined = await doctor.post(
        f"{thread_path}/decline",
        data={"reason": canaries["reason"], "csrf_token": await login(doctor, MARTIN)},
    )
    assert declined.status_code == 303
    alice = await user(ALICE)
    alice.totp_secret = canaries["totp"]
    await alice.save(update_fields=["totp_secret"])

    # The application reads them all back as text...
    page = await patient.get(thread_path)
    assert canaries["subject"] in page.text
    assert canaries["body"] in page.text
    assert canaries["message"] in (await patient.get(f"/threads/{renewal.id}")).text
    thread = await Thread.get(id=int(thread_path.rsplit("/", 1)[1]))
    assert thread.decline_reason == canaries["reason"]
    assert (await user(ALICE)).totp_secret == canaries["totp"]

    # ...while the database holds none of them, though it does hold what is not encrypted.
    stored = await _everything_stored(db)
    assert MARTIN.encode() in stored
    for name, canary in canaries.items():
        assert canary.encode() not in stored, f"{name} is stored in clear"


# --- every read path gets text -----------------------------------------------------------------


async def test_every_read_path_decrypts() -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    first = await Message.filter(thread_id=thread.id).order_by("seq").first()
    assert first is not None
    assert (await _stored_body(first.id)).startswith("v1:dev:")
    text = first.body
    assert text.startswith("Bonjour docteur")

    assert (await Message.filter(id=first.id).values_list("body", flat=True)) == [text]
    assert (await Message.filter(id=first.id).first().values_list("body", flat=True)) == text
    [row] = await Message.filter(id=first.id).values("body", "thread__subject")
    assert row == {"body": text, "thread__subject": SUBJECT_RENEWAL}
    [(body, subject)] = await Message.filter(id=first.id).values_list("body", "thread__subject")
    assert (body, subject) == (text, SUBJECT_RENEWAL)
    related = await Message.get(id=first.id).select_related("thread")
    assert related.thread.subject == SUBJECT_RENEWAL

    assert (await queries.thread_messages(thread))[0].body == text
    alice = await user(ALICE)
    assert SUBJECT_RENEWAL in [row.thread.subject for row in await queries.patient_threads(alice)]
    event = StreamEvent(kind="message.created", thread_id=thread.id, data={"message_id": first.id})
    loaded = await preload([event])
    assert loaded.threads[thread.id].subject == SUBJECT_RENEWAL
    assert loaded.messages[first.id].body == text


async def test_the_triage_worker_reads_the_body_in_clear() -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    message = await Message.create(
        thread_id=thread.id,
        seq=thread.last_seq + 1,
        author=await user(ALICE),
        kind=MessageKind.PATIENT,
        body=CARDIAC,
    )
    assert "douleur" not in await _stored_body(message.id)
    await assess_message(message.id)
    assert (await Message.get(id=message.id)).emergency is True


async def test_a_filter_on_an_encrypted_column_fails_instead_of_finding_nothing() -> None:
    with pytest.raises(EncryptedColumnFilter, match=r"thread\.subject"):
        await Thread.filter(subject=SUBJECT_RENEWAL).exists()
    with pytest.raises(EncryptedColumnFilter, match=r"message\.body"):
        await Message.filter(body__in=["Bonjour"]).exists()
    # The empty string is stored as is, so "no decline reason" can still be asked for.
    assert await Thread.filter(decline_reason="").count() == await Thread.all().count()


# --- values that are not ours, or not intact ------------------------------------------------------


async def test_plaintext_written_before_encryption_is_read_as_is() -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    await _raw("UPDATE thread SET subject = ? WHERE id = ?", "Sujet d'avant", thread.id)
    assert (await Thread.get(id=thread.id)).subject == "Sujet d'avant"


async def test_a_value_moved_from_another_column_is_refused() -> None:
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    [row] = await _raw("SELECT subject FROM thread WHERE id = ?", thread.id)
    message = await Message.filter(thread_id=thread.id).first()
    assert message is not None
    await _raw("UPDATE message SET body = ? WHERE id = ?", row["subject"], message.id)
    with pytest.raises(DecryptionError, match=r"message\.body"):
        await Message.get(id=message.id)
    with pytest.raises(DecryptionError):
        await Message.filter(id=message.id).values_list("body", flat=True)


async def _tamper_with_a_message() -> int:
    """Swap one character of a stored body for another base64 character; its id."""
    message = await Message.first()
    assert message is not None
    stored = await _stored_body(message.id)
    position = len(stored) // 2
    changed = "A" if stored[position] != "A" else "B"
    tampered = stored[:position] + changed + stored[position + 1 :]
    await _raw("UPDATE message SET body = ? WHERE id = ?", tampered, message.id)
    return message.id


async def test_a_tampered_value_is_refused_not_shown() -> None:
    message_id = await _tamper_with_a_message()
    with pytest.raises(DecryptionError, match="fails authentication"):
        await Message.get(id=message_id)


# --- key rotation, in process ------------------------------------------------------------------


async def _stored_values() -> list[tuple[str, int, str | None]]:
    found = []
    for column in key_rotation.encrypted_columns():
        rows = await _raw(f'SELECT id, "{column.column}" AS v FROM "{column.table}"')  # noqa: S608
        found += [(column.context, int(row["id"]), row["v"]) for row in rows]
    return sorted(found)


@pytest.mark.usefixtures("keyring_restored")
async def test_rotation_moves_every_value_to_the_new_key() -> None:
    alice = await user(ALICE)
    alice.totp_secret = "JBSWY3DPEHPK3PXP"
    await alice.save(update_fields=["totp_secret"])
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    await _raw("UPDATE thread SET subject = ? WHERE id = ?", "Sujet d'avant", thread.id)
    before = {(c, i): v for c, i, v in await _stored_values()}

    keyring = Keyring([NEW_KEY, DEVELOPMENT_DATA_KEY])
    crypto.use_keyring(keyring)
    # The old key still decrypts what it wrote, before any rotation.
    assert (await Thread.get(id=thread.id).select_related("patient")).patient.totp_secret
    rotations = {r.column.context: r for r in await rotate_keys(keyring, batch_size=3)}

    non_empty = {k for k, v in before.items() if v}
    assert sum(r.reencrypted for r in rotations.values()) == len(non_empty)
    assert rotations["thread.subject"].from_plaintext == 1
    assert rotations["user.totp_secret"].reencrypted == 1
    for context, _, value in await _stored_values():
        assert value in (None, "") or value.startswith("v1:new:"), context
    assert (await Thread.get(id=thread.id)).subject == "Sujet d'avant"
    assert (await user(ALICE)).totp_secret == "JBSWY3DPEHPK3PXP"
    assert (await queries.thread_messages(thread))[0].body.startswith("Bonjour docteur")

    again = await rotate_keys(keyring)
    assert [r.reencrypted for r in again] == [0] * len(again)


@pytest.mark.usefixtures("keyring_restored")
async def test_a_missing_key_stops_rotation_before_anything_is_written() -> None:
    before = await _stored_values()
    keyring = Keyring([NEW_KEY])
    crypto.use_keyring(keyring)
    with pytest.raises(RotationError, match=r"'dev'.*does not list") as refused:
        await rotate_keys(keyring, batch_size=2)
    assert "nothing was changed" in str(refused.value)
    assert await _stored_values() == before


@pytest.mark.usefixtures("keyring_restored")
async def test_an_altered_value_stops_rotation_and_is_named() -> None:
    message_id = await _tamper_with_a_message()
    before = await _stored_values()
    keyring = Keyring([NEW_KEY, DEVELOPMENT_DATA_KEY])
    crypto.use_keyring(keyring)
    with pytest.raises(RotationError, match=rf"authentication.*message\.body id {message_id}\b"):
        await rotate_keys(keyring)
    assert await _stored_values() == before


@pytest.mark.usefixtures("keyring_restored")
async def test_a_value_written_during_rotation_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    keyring = Keyring([NEW_KEY, DEVELOPMENT_DATA_KEY])
    crypto.use_keyring(keyring)
    target = await Message.all().order_by("id").first()
    assert target is not None
    real_transaction = key_rotation.in_transaction
    written: list[int] = []

    @contextlib.asynccontextmanager
    async def racing_transaction() -> AsyncIterator[Any]:
        # The service writes the row after rotation read it, before rotation updates it.
        if not written:
            await Message.filter(id=target.id).update(body="Écrit pendant la rotation")
            written.append(target.id)
        async with real_transaction() as connection:
            yield connection

    monkeypatch.setattr(key_rotation, "in_transaction", racing_transaction)
    rotations = {r.column.context: r for r in await rotate_keys(keyring)}
    assert rotations["message.body"].changed_meanwhile == 1
    assert (await Message.get(id=target.id)).body == "Écrit pendant la rotation"
    assert (await _stored_body(target.id)).startswith("v1:new:")


async def test_page_rendering_survives_rotation(
    client: httpx.AsyncClient, keyring_restored: None
) -> None:
    keyring = Keyring([NEW_KEY, DEVELOPMENT_DATA_KEY])
    crypto.use_keyring(keyring)
    await rotate_keys(keyring)
    await login(client, ALICE)
    thread = await thread_by_subject(SUBJECT_RENEWAL)
    page = await client.get(f"/threads/{thread.id}")
    assert page.status_code == 200
    assert "Bonjour docteur" in page.text
    assert "v1:" not in page.text
