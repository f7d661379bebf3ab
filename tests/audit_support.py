"""The audit trail in tests: emptying it (the database refuses otherwise), dating lines in the past.

Only the table's owner can lift its guard (PostgreSQL) or drop and recreate its triggers
(SQLite): the test database's owner does so around the statements that empty the tables.
"""

from __future__ import annotations

import importlib
from datetime import datetime

from tortoise import connections

from server import sql
from server.models import AuditEvent

_MIGRATION = importlib.import_module("server.migrations.0006_audit_append_only")

_POSTGRES_TRIGGERS = ("audit_event_append_only", "audit_event_no_truncate")


def with_audit_guard_lifted(statements: list[str], postgres: bool) -> list[str]:
    """`statements`, run with the append-only guard of audit_event lifted, then put back.

    Run them as one script: on PostgreSQL a failure in between rolls the whole script back,
    guard included.
    """
    if postgres:
        lift = [f"ALTER TABLE audit_event DISABLE TRIGGER {name}" for name in _POSTGRES_TRIGGERS]
        restore = [f"ALTER TABLE audit_event ENABLE TRIGGER {name}" for name in _POSTGRES_TRIGGERS]
        return [*lift, *statements, *restore]
    return [*_MIGRATION.SQLITE_BACKWARD, *statements, *_MIGRATION.SQLITE_FORWARD]


async def add_line(action: str, months_ago: int = 0) -> int:
    """An audit line dated `months_ago` in the past, written as only raw SQL can date it."""
    connection = connections.get("default")
    if sql.is_postgres(connection):
        when = f"now() - interval '{months_ago} months'"
    else:
        when = f"strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', '-{months_ago} months')"
    columns = "actor_id, action, subject, object, outcome, detail, created_at"
    # `when` is built from an int above: no text reaches the statement but through `?`.
    query = f"INSERT INTO audit_event ({columns}) VALUES (1, ?, '', '', 'ok', '{{}}', {when})"  # noqa: S608
    await sql.fetch(connection, query, action)
    return (await AuditEvent.get(action=action)).id


async def add_line_at(action: str, when: datetime, practice_id: int | None = None) -> None:
    """An audit line of `practice_id` at an exact moment."""
    columns = "actor_id, action, practice_id, subject, object, outcome, detail, created_at"
    await sql.fetch(
        connections.get("default"),
        f"INSERT INTO audit_event ({columns}) VALUES (NULL, ?, ?, '', '', 'ok', '{{}}', ?)",  # noqa: S608
        action,
        practice_id,
        when,
    )
