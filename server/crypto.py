"""Encryption at rest: AES-256-GCM under named keys, for the columns that hold health data.

A stored value reads `v1:<key id>:<base64 of nonce + ciphertext + tag>`. Each value has its own
random 96-bit nonce; the associated data is the value's `table.column`, so a ciphertext copied
into another column fails authentication instead of showing there. The key id says which key
decrypts it, so keys can be replaced (`colloque rotate-keys`) while old values stay readable.

Values written before encryption was turned on carry no such prefix and are returned as they
are, until rotate-keys encrypts them.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.settings import DATA_KEY_ID, load_settings

_PREFIX = "v1:"
_NONCE_BYTES = 12
_TAG_BYTES = 16


class DecryptionError(ValueError):
    """A stored value that claims to be encrypted cannot be decrypted: never shown as text."""


class UnknownKeyError(DecryptionError):
    """The value names a key id that the configured keys do not include."""


def _parse(stored: str) -> tuple[str, bytes] | None:
    """(key id, nonce + ciphertext + tag) of an encrypted value, None for plaintext.

    Only text of exactly our shape counts as encrypted, so that plaintext such as "v1: draft"
    or "v1:dev:ok" stays plaintext: nonce and tag alone take 28 bytes.
    """
    if not stored.startswith(_PREFIX):
        return None
    key_id, colon, encoded = stored[len(_PREFIX) :].partition(":")
    if not colon or not DATA_KEY_ID.fullmatch(key_id):
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        return None
    return (key_id, raw) if len(raw) >= _NONCE_BYTES + _TAG_BYTES else None


def key_id_of(stored: str) -> str | None:
    """The key id a stored value was encrypted with, None for plaintext."""
    parsed = _parse(stored)
    return parsed[0] if parsed else None


class Keyring:
    """The configured data keys: the first encrypts, every one decrypts."""

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}
        if not self._ciphers:
            raise ValueError("a keyring needs at least one key")
        self.current_id = next(iter(self._ciphers))

    def encrypt(self, plaintext: str, context: str) -> str:
        """Encrypt `plaintext` for the column named by `context` ("table.column")."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self.current_id].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_PREFIX}{self.current_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str, context: str) -> str:
        """The plaintext of a stored value of the column `context`; plaintext passes through.

        Raises DecryptionError when the value was altered, belongs to another column, or names
        a key that is not configured.
        """
        parsed = _parse(stored)
        if parsed is None:
            return stored
        key_id, raw = parsed
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(
                f"a value of {context} is encrypted with key {key_id!r},"
                " which COLLOQUE_DATA_KEYS does not list"
            )
        try:
            return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
        except (InvalidTag, UnicodeDecodeError) as error:
            raise DecryptionError(
                f"a value of {context} under key {key_id!r} fails authentication:"
                " it was altered or moved from another column"
            ) from error

    def is_current(self, stored: str) -> bool:
        """Whether `stored` is already encrypted with the current key."""
        return key_id_of(stored) == self.current_id


_active: Keyring | None = None


def use_keyring(keyring: Keyring) -> None:
    """Make `keyring` the one every encrypted column of this process uses."""
    global _active
    _active = keyring


def active_keyring() -> Keyring:
    """The process's keyring, built from the environment's settings on first use."""
    if _active is None:
        use_keyring(Keyring(load_settings().data_keys))
    assert _active is not None
    return _active
