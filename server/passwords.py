"""Password hashing with argon2id, off the event loop."""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.rules.passwords import normalise_password

# OWASP Password Storage Cheat Sheet (2025): argon2id, m=19 MiB, t=2, p=1 is the baseline
# configuration; it keeps a login near 20-40 ms of one core here.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

# Verified when the account does not exist, so that unknown and known emails take the same time.
_DUMMY_HASH = _HASHER.hash("colloque-timing-equaliser")


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_HASHER.hash, normalise_password(password))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, normalise_password(password))
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown account) spend the same time and say no."""
    if password_hash is None:
        await anyio.to_thread.run_sync(_verify, _DUMMY_HASH, password)
        return False
    return await anyio.to_thread.run_sync(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True for a hash made with other parameters (older or weaker): rehash it at the next login."""
    return _HASHER.check_needs_rehash(password_hash)
