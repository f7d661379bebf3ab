"""The database itself keeps the audit trail append-only, whatever the application asks.

UPDATE is always refused; DELETE too, except for lines past the 12-month retention period, and
on PostgreSQL only inside a transaction that declares a purge.
"""

from __future__ import annotations

import pytest
from audit_support import add_line
from tortoise import connections
from tortoise.exceptions import BaseORMException
from tortoise.transactions import in_transaction

from server import sql
from server.actions import audit
from server.models import AuditEvent

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]


async def _refused(statement: str, *params: object) -> None:
    with pytest.raises(BaseORMException, match="append-only"):
        await sql.fetch(connections.get("default"), statement, *params)


async def test_no_line_can_be_changed() -> None:
    recent = await add_line("recent")
    old = await add_line("old", months_ago=13)
    for line in (recent, old):
        await _refused("UPDATE audit_event SET action = 'rewritten' WHERE id = ?", line)
        await _refused("UPDATE audit_event SET created_at = created_at WHERE id = ?", line)
    with pytest.raises(BaseORMException):
        await AuditEvent.filter(id=recent).update(outcome="denied")
    assert set(await AuditEvent.all().values_list("action", flat=True)) == {"recent", "old"}


async def test_recent_lines_cannot_be_deleted() -> None:
    await audit.record(1, "login.succeeded")
    await add_line("eleven months", months_ago=11)
    await _refused("DELETE FROM audit_event")
    with pytest.raises(BaseORMException):
        await AuditEvent.filter(action="login.succeeded").delete()
    assert await AuditEvent.all().count() == 2


async def test_even_a_declared_purge_cannot_delete_recent_lines() -> None:
    if not sql.is_postgres(connections.get("default")):
        pytest.skip("SET LOCAL is PostgreSQL's; SQLite refuses recent deletions outright")
    await add_line("recent")
    with pytest.raises(BaseORMException, match="append-only"):
        async with in_transaction() as connection:
            await connection.execute_script("SET LOCAL colloque.audit_purge = 'on'")
            await connection.execute_script("DELETE FROM audit_event")
    assert await AuditEvent.all().count() == 1


async def test_old_lines_go_only_through_a_declared_purge_on_postgres() -> None:
    if not sql.is_postgres(connections.get("default")):
        pytest.skip("SQLite has no transaction settings: old lines may simply be deleted")
    await add_line("old", months_ago=13)
    await _refused("DELETE FROM audit_event")
    await _refused("TRUNCATE audit_event")
    # The setting lasts one transaction: it does not leak to the next statement.
    async with in_transaction() as connection:
        await connection.execute_script("SET LOCAL colloque.audit_purge = 'on'")
    await _refused("DELETE FROM audit_event")
    assert await AuditEvent.all().count() == 1


async def test_the_purge_deletes_old_lines_only_and_twice_changes_nothing() -> None:
    await add_line("thirteen months", months_ago=13)
    await add_line("twelve months and a bit", months_ago=12)
    await add_line("eleven months", months_ago=11)
    await audit.record(1, "today")
    # "12 months and a bit": a few milliseconds past the limit by the time the purge runs.
    assert await audit.purge_expired() == 2
    assert await audit.purge_expired() == 0
    assert sorted(await AuditEvent.all().values_list("action", flat=True)) == [
        "eleven months",
        "today",
    ]
