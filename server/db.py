"""Opening, closing and migrating the database."""

from __future__ import annotations

import logging
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as run_migrations

from server import crypto
from server.settings import ROOT, Settings, load_settings

_LOGGERS_WITH_PARAMETERS = ("tortoise.db_client", "aiosqlite")

#: PostgreSQL connections per process. Each request and the live hub hold one for a query or a
#: transaction; asyncpg's default of 5 made requests queue for a connection under load.
POOL_SIZE = 20


async def _keep_session(_connection: object) -> None:
    """Connections go back to the pool without asyncpg's reset query.

    asyncpg still rolls back a transaction left open; the reset query would also drop session
    settings, LISTENs, cursors and advisory locks, none of which Colloque uses (its one
    `SET LOCAL` ends with its transaction). Skipping it saves a round trip on every query made
    outside a transaction.
    """


def _connection_config(database_url: str) -> str | dict[str, Any]:
    if database_url.startswith("postgresql://"):
        database_url = "postgres://" + database_url.removeprefix("postgresql://")
    if not database_url.startswith("postgres://"):
        return database_url
    config = expand_db_url(database_url)
    config["credentials"].setdefault("maxsize", POOL_SIZE)
    config["credentials"]["reset"] = _keep_session
    return config


def tortoise_config(database_url: str) -> dict[str, Any]:
    """Tortoise's configuration for one database; `server.migrations` holds the schema history."""
    return {
        "connections": {"default": _connection_config(database_url)},
        "apps": {
            "models": {
                "models": ["server.models"],
                "default_connection": "default",
                "migrations": "server.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _ensure_sqlite_folder(database_url: str) -> None:
    if database_url.startswith("sqlite://") and ":memory:" not in database_url:
        path = database_url.removeprefix("sqlite://").split("?", 1)[0]
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)


async def open_database(settings: Settings) -> None:
    """Open the ORM for the whole process.

    Tortoise 1.x keeps its state in a context variable; request tasks do not inherit the
    lifespan's context, so the process-wide fallback is what every handler and worker uses.
    """
    _ensure_sqlite_folder(settings.database_url)
    # Encrypted columns read and write with the keys of these settings, the only source of keys.
    crypto.use_keyring(crypto.Keyring(settings.data_keys))
    # Tortoise and aiosqlite log every statement with its parameters at DEBUG: emails, message
    # text. Health data never goes to logs, even when an operator turns debugging on.
    for name in _LOGGERS_WITH_PARAMETERS:
        logging.getLogger(name).setLevel(logging.INFO)
    await Tortoise.init(config=tortoise_config(settings.database_url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


async def migrate(settings: Settings) -> None:
    """Bring the schema up to date; applying it twice changes nothing."""
    _ensure_sqlite_folder(settings.database_url)
    try:
        await run_migrations(config=tortoise_config(settings.database_url))
    finally:
        await connections.close_all()


async def ping() -> None:
    """Raise if the database does not answer a trivial query."""
    await connections.get("default").execute_query("SELECT 1")


#: For Tortoise's own command line (`tortoise -c server.db.TORTOISE_ORM makemigrations`).
TORTOISE_ORM = tortoise_config(load_settings().database_url)
