"""A session that expires (idle or absolute timeout) closes its live streams by itself, without
a logout: a phone left on a table stops receiving conversations."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime

import pytest

from server.live.session_check import CHECK_SECONDS

from .conftest import Login
from .support import ALICE, MARTIN, Cluster, is_postgres, wait_until

pytestmark = pytest.mark.anyio

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


async def _expire_sessions_of(database_url: str, email: str) -> None:
    """What the clock would do: the account's sessions are past their absolute timeout."""
    query = (
        'UPDATE session SET expires_at = ? WHERE user_id = (SELECT id FROM "user" WHERE email = ?)'
    )
    if is_postgres(database_url):
        import asyncpg

        connection = await asyncpg.connect("postgresql://" + database_url.split("://", 1)[1])
        try:
            await connection.execute(
                query.replace("?", "$1", 1).replace("?", "$2", 1), LONG_AGO, email
            )
        finally:
            await connection.close()
        return

    def write() -> None:
        path = database_url.removeprefix("sqlite://")
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as connection, connection:
            connection.execute(query, (LONG_AGO.isoformat(" "), email))

    await asyncio.to_thread(write)


async def test_an_expired_sessions_streams_close_within_the_check_period(
    cluster: Cluster, people: Login
) -> None:
    alice = await people(cluster.base_url, ALICE)
    martin = await people(cluster.base_url, MARTIN)
    expiring_sse = await alice.sse()
    expiring_ws = await martin.ws()
    await _expire_sessions_of(cluster.database_url, ALICE)
    await _expire_sessions_of(cluster.database_url, MARTIN)
    await wait_until(
        lambda: expiring_sse.ended and expiring_ws.ended,
        within=CHECK_SECONDS + 5,
        what="the expired sessions' streams to close",
    )
