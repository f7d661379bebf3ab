"""Settings, read once from the environment (see the README's table)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = ROOT / "web"

# Known value so that a development checkout works with no set-up; production refuses it.
DEVELOPMENT_SECRET_KEY = "colloque-development-key-do-not-use-in-production"  # noqa: S105


class SettingsError(RuntimeError):
    """Raised when the environment describes a configuration that must not start."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    secret_key: str
    environment: str
    port: int
    #: A triage job taken by a worker and not acknowledged after this long is handed to another
    #: worker: the first one is presumed dead. Longer than any assessment takes.
    triage_reclaim_seconds: float = 30.0

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def embedded(self) -> bool:
        """No Redis: the web process also runs the background workers itself."""
        return self.redis_url is None


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from `environ` (the process environment by default) and validate them."""
    env = os.environ if environ is None else environ
    environment = env.get("COLLOQUE_ENV", "development").strip() or "development"
    if environment not in ("development", "production"):
        raise SettingsError(
            f"COLLOQUE_ENV must be 'development' or 'production', not {environment!r}"
        )
    secret_key = env.get("SECRET_KEY") or DEVELOPMENT_SECRET_KEY
    if environment == "production":
        if secret_key == DEVELOPMENT_SECRET_KEY:
            raise SettingsError("SECRET_KEY must be set to a private value in production")
        if len(secret_key) < 32:
            raise SettingsError("SECRET_KEY must be at least 32 characters long in production")
    database_url = env.get("DATABASE_URL") or f"sqlite://{ROOT / 'var' / 'colloque.sqlite3'}"
    if not database_url.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
        raise SettingsError("DATABASE_URL must be a sqlite:// or postgres:// URL")
    try:
        port = int(env.get("PORT") or 8000)
    except ValueError as exc:
        raise SettingsError("PORT must be a number") from exc
    try:
        reclaim = float(env.get("COLLOQUE_TRIAGE_RECLAIM_SECONDS") or 30)
    except ValueError as exc:
        raise SettingsError("COLLOQUE_TRIAGE_RECLAIM_SECONDS must be a number") from exc
    if reclaim <= 0:
        raise SettingsError("COLLOQUE_TRIAGE_RECLAIM_SECONDS must be positive")
    return Settings(
        database_url=database_url,
        redis_url=env.get("REDIS_URL") or None,
        secret_key=secret_key,
        environment=environment,
        port=port,
        triage_reclaim_seconds=reclaim,
    )
