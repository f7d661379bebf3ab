"""Settings, read once from the environment (see the README's table)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB_DIR = ROOT / "web"

# Known value so that a development checkout works with no set-up; production refuses it.
DEVELOPMENT_SECRET_KEY = "colloque-development-key-do-not-use-in-production"  # noqa: S105


#: Derived from a public string: it keeps a development checkout working and protects nothing.
#: Production refuses it.
DEVELOPMENT_DATA_KEY = ("dev", hashlib.sha256(b"colloque development data key").digest())
#: What a data key id may be made of: it is stored before every encrypted value.
DATA_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


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
    #: (key id, 32-byte AES key) pairs for encryption at rest: the first encrypts, every one
    #: decrypts. Kept out of repr() so that logging the settings never shows a key.
    data_keys: tuple[tuple[str, bytes], ...] = field(default=(DEVELOPMENT_DATA_KEY,), repr=False)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def embedded(self) -> bool:
        """No Redis: the web process also runs the background workers itself."""
        return self.redis_url is None


def _parse_data_keys(value: str) -> tuple[tuple[str, bytes], ...]:
    """`keyid:base64,keyid:base64,...`; errors never echo key material."""
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(value.split(","), start=1):
        key_id, colon, encoded = entry.strip().partition(":")
        if not colon or not DATA_KEY_ID.fullmatch(key_id):
            raise SettingsError(
                f"COLLOQUE_DATA_KEYS entry {position} must be 'keyid:base64-key', the key id"
                " made of 1 to 32 letters, digits, '-' or '_'"
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:  # not base64, or not ASCII at all
            key = b""
        if len(key) != 32:
            raise SettingsError(
                f"COLLOQUE_DATA_KEYS key {key_id!r} must be 32 random bytes in base64"
            )
        if key_id in (known for known, _ in keys):
            raise SettingsError(f"COLLOQUE_DATA_KEYS names key {key_id!r} twice")
        keys.append((key_id, key))
    return tuple(keys)


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
    data_keys = (
        _parse_data_keys(env["COLLOQUE_DATA_KEYS"])
        if env.get("COLLOQUE_DATA_KEYS", "").strip()
        else (DEVELOPMENT_DATA_KEY,)
    )
    if environment == "production" and DEVELOPMENT_DATA_KEY[1] in (key for _, key in data_keys):
        raise SettingsError("COLLOQUE_DATA_KEYS must be set to private keys in production")
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
        data_keys=data_keys,
    )
