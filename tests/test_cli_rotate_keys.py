"""`colloque rotate-keys` end to end: the real command, in a subprocess, on a database of its own.

The database is a fresh SQLite file, or with DATABASE_URL=postgres://... a fresh database on
the same server, dropped afterwards.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from core_support import SUBJECT_RENEWAL

from server.crypto import Keyring

pytestmark = pytest.mark.anyio

COLLOQUE = str(Path(sys.executable).parent / "colloque")
OLD, NEW, OTHER = (("old", os.urandom(32)), ("new", os.urandom(32)), ("other", os.urandom(32)))
COLUMNS = (
    ("message", "body"),
    ("thread", "decline_reason"),
    ("thread", "subject"),
    ("user", "totp_secret"),
)


def _keys(*keys: tuple[str, bytes]) -> str:
    return ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in keys)


def _colloque(
    database_url: str, *args: str, keys: str | None, environment: str = "development"
) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("REDIS_URL", "COLLOQUE_DATA_KEYS", "SECRET_KEY")
    }
    env.update(DATABASE_URL=database_url, COLLOQUE_ENV=environment)
    if keys is not None:
        env["COLLOQUE_DATA_KEYS"] = keys
    if environment == "production":
        env["SECRET_KEY"] = "a-production-secret-key-of-forty-characters"
    return subprocess.run(
        [COLLOQUE, *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite://{tmp_path / 'rotate.sqlite3'}"
        return
    import asyncpg

    dsn = "postgres://" + url.split("://", 1)[1]
    server, _, name = dsn.rpartition("/")
    scratch = f"{name.split('?')[0]}_rotate_cli"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        await admin.execute(f'CREATE DATABASE "{scratch}"')
        yield f"{server}/{scratch}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        await admin.close()


async def _stored(database_url: str) -> dict[tuple[str, int], str]:
    """Every non-empty value of every encrypted column, read past the application."""
    queries = [
        (f"{table}.{column}", f'SELECT id, "{column}" FROM "{table}"')  # noqa: S608
        for table, column in COLUMNS
    ]
    found: dict[tuple[str, int], str] = {}
    if database_url.startswith("sqlite://"):
        with sqlite3.connect(database_url.removeprefix("sqlite://")) as connection:
            for context, query in queries:
                for row_id, value in connection.execute(query):
                    if value:
                        found[(context, row_id)] = value
        return found
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        for context, query in queries:
            for row_id, value in await connection.fetch(query):
                if value:
                    found[(context, row_id)] = value
    finally:
        await connection.close()
    return found


def _counts(output: str) -> dict[str, int]:
    """`message.body: 12 re-encrypted (...)` lines, as {"message.body": 12}."""
    counts = {}
    for line in output.splitlines():
        name, colon, rest = line.partition(": ")
        if colon and rest.split(" ", 2)[1:2] == ["re-encrypted"]:
            counts[name] = int(rest.split(" ", 1)[0])
    return counts


async def test_rotate_keys_re_encrypts_everything_once(database_url: str) -> None:
    demo = _colloque(database_url, "demo", keys=_keys(OLD))
    assert demo.returncode == 0, demo.stderr
    before = await _stored(database_url)
    assert before, "the demo stores messages and subjects"
    assert all(value.startswith("v1:old:") for value in before.values())

    rotated = _colloque(database_url, "rotate-keys", "--batch-size", "4", keys=_keys(NEW, OLD))
    assert rotated.returncode == 0, rotated.stderr
    assert "current key: new" in rotated.stdout
    counts = _counts(rotated.stdout)
    assert set(counts) == {f"{table}.{column}" for table, column in COLUMNS}
    assert sum(counts.values()) == len(before)
    assert counts["message.body"] == sum(1 for c, _ in before if c == "message.body")
    after = await _stored(database_url)
    assert after.keys() == before.keys()
    assert all(value.startswith("v1:new:") for value in after.values())

    # The new key alone now reads everything, and the text is what it was.
    new_only = Keyring([NEW])
    subjects = [new_only.decrypt(v, c) for (c, _), v in after.items() if c == "thread.subject"]
    assert SUBJECT_RENEWAL in subjects

    again = _colloque(database_url, "rotate-keys", keys=_keys(NEW))
    assert again.returncode == 0, again.stderr
    assert set(_counts(again.stdout).values()) == {0}
    assert await _stored(database_url) == after


async def test_rotate_keys_without_the_old_key_fails_and_changes_nothing(
    database_url: str,
) -> None:
    assert _colloque(database_url, "demo", keys=_keys(OLD)).returncode == 0
    before = await _stored(database_url)

    refused = _colloque(database_url, "rotate-keys", keys=_keys(OTHER))
    assert refused.returncode == 1
    assert "'old'" in refused.stderr
    assert "does not list" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert await _stored(database_url) == before


async def test_rotate_keys_refuses_bad_settings(database_url: str) -> None:
    batch = _colloque(database_url, "rotate-keys", "--batch-size", "0", keys=_keys(NEW))
    assert batch.returncode == 2
    assert "--batch-size" in batch.stderr
    production = _colloque(database_url, "rotate-keys", keys=None, environment="production")
    assert production.returncode == 2
    assert "COLLOQUE_DATA_KEYS" in production.stderr
