"""Hand-written SQL for the few hot statements the ORM needs several round trips for.

Queries are written once with `?` placeholders and run on SQLite and PostgreSQL alike; datetimes
are passed as aware UTC values, which both drivers store exactly as the ORM does.
"""

from __future__ import annotations

import re
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

_PLACEHOLDER = re.compile(r"\?")


def is_postgres(connection: BaseDBAsyncClient) -> bool:
    return connection.capabilities.dialect == "postgres"


def dialect(connection: BaseDBAsyncClient, query: str) -> str:
    """`query` with PostgreSQL's numbered placeholders when that is the database."""
    if not is_postgres(connection):
        return query
    numbers = iter(range(1, query.count("?") + 1))
    return _PLACEHOLDER.sub(lambda _: f"${next(numbers)}", query)


async def fetch(connection: BaseDBAsyncClient, query: str, *params: Any) -> list[dict[str, Any]]:
    """Rows of `query` as dicts; `?` placeholders on every database."""
    return await connection.execute_query_dict(dialect(connection, query), list(params))
