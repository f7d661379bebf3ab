"""`colloque purge`: audit lines past 12 months, expired sessions, spent reset links; idempotent."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from audit_support import add_line
from core_support import ALICE, user
from service_support import run_colloque

from server.actions.retention import purge
from server.models import AuditEvent, PasswordReset, Session
from server.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]


async def _what_can_go_and_what_stays() -> None:
    """Two of each kind that must go, one of each that must stay."""
    await add_line("old audit 1", months_ago=13)
    await add_line("old audit 2", months_ago=24)
    await add_line("recent audit", months_ago=1)
    alice = await user(ALICE)
    now = datetime.now(UTC)
    for key, seen, expires in (
        ("idle", now - timedelta(hours=1), now + timedelta(hours=5)),
        ("over", now - timedelta(minutes=1), now - timedelta(minutes=1)),
        ("live", now, now + timedelta(hours=5)),
    ):
        await Session.create(key_hash=key, user=alice, last_seen_at=seen, expires_at=expires)
    for token, used, expires in (
        ("used", now - timedelta(minutes=5), now + timedelta(minutes=20)),
        ("expired", None, now - timedelta(minutes=1)),
        ("valid", None, now + timedelta(minutes=20)),
    ):
        await PasswordReset.create(user=alice, token_hash=token, used_at=used, expires_at=expires)


async def _left() -> tuple[list[str], list[str], list[str]]:
    return (
        sorted(await AuditEvent.all().values_list("action", flat=True)),
        sorted(await Session.all().values_list("key_hash", flat=True)),
        sorted(await PasswordReset.all().values_list("token_hash", flat=True)),
    )


async def test_purge_deletes_what_is_past_its_time_and_nothing_else() -> None:
    await _what_can_go_and_what_stays()
    purged = await purge()
    assert (purged.audit_lines, purged.sessions, purged.password_resets) == (2, 2, 2)
    assert await _left() == (["recent audit"], ["live"], ["valid"])
    again = await purge()
    assert (again.audit_lines, again.sessions, again.password_resets) == (0, 0, 0)


def _colloque_purge(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "COLLOQUE_ENV": "development"}
    return run_colloque(env, "purge")


async def test_the_command_prints_its_counts_and_a_second_run_finds_nothing(
    db: Settings,
) -> None:
    await _what_can_go_and_what_stays()
    first = _colloque_purge(db)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        "purged 2 audit lines older than 12 months, 2 expired sessions,"
        " 2 used or expired password resets"
    )
    assert await _left() == (["recent audit"], ["live"], ["valid"])
    second = _colloque_purge(db)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().startswith("purged 0 audit lines")
    assert ", 0 expired sessions, 0 used" in second.stdout
