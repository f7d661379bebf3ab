"""The audit trail becomes append-only in the database itself.

Even the application's own role cannot rewrite history: UPDATE is always refused, DELETE (and,
on PostgreSQL, TRUNCATE) too, except for lines past the 12-month retention period.

- PostgreSQL: a purge must also say so, with `SET LOCAL colloque.audit_purge = 'on'` in its
  transaction (`colloque purge` does), so a stray `DELETE FROM audit_event` fails loudly.
- SQLite has no per-transaction settings: old lines may go, recent ones may not.

A role that owns the table can still drop the triggers; production should run the web and
worker processes as a role that does not own the tables (see README, "Data retention").

Written by hand (triggers are not part of the model state). The SQL is kept here, frozen with
the migration, rather than imported from application code that may change later.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('colloque.audit_purge', true) = 'on'
       AND OLD.created_at < now() - interval '12 months' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Lines older than 12 months are deleted by colloque purge.';
END
$$;
CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
CREATE OR REPLACE FUNCTION audit_event_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only: TRUNCATE refused'
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_no_truncate();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event;
DROP FUNCTION IF EXISTS audit_event_no_truncate();
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event;
DROP FUNCTION IF EXISTS audit_event_append_only();
"""

# One statement each: a trigger body holds semicolons, which the SQLite runner would split on.
SQLITE_FORWARD = (
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only: UPDATE refused');
END""",
    """CREATE TRIGGER audit_event_no_early_delete BEFORE DELETE ON audit_event
WHEN julianday(OLD.created_at) >= julianday('now', '-12 months')
BEGIN
    SELECT RAISE(ABORT, 'audit_event is append-only: DELETE refused within 12 months');
END""",
)

SQLITE_BACKWARD = (
    "DROP TRIGGER IF EXISTS audit_event_no_early_delete",
    "DROP TRIGGER IF EXISTS audit_event_no_update",
)


async def _run(schema_editor, postgres: str, sqlite: tuple[str, ...]) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script(postgres)
    else:
        for statement in sqlite:
            await client.execute_query(statement)


async def forward(apps, schema_editor) -> None:  # Tortoise RunPython signature
    await _run(schema_editor, POSTGRES_FORWARD, SQLITE_FORWARD)


async def backward(apps, schema_editor) -> None:
    await _run(schema_editor, POSTGRES_BACKWARD, SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("models", "0004_security")]

    initial = False

    operations = [ops.RunPython(forward, backward)]
