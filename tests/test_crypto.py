"""AES-256-GCM under named keys, and the COLLOQUE_DATA_KEYS setting: pure, no database."""

from __future__ import annotations

import base64
import os

import pytest

from server.crypto import DecryptionError, Keyring, UnknownKeyError, key_id_of
from server.settings import DEVELOPMENT_DATA_KEY, SettingsError, load_settings

OLD = ("old", os.urandom(32))
NEW = ("new", os.urandom(32))
BODY = "Ma tension est à 16/9 depuis hier soir, dois-je doubler le traitement ?"
CONTEXT = "message.body"


def _flip(stored: str, position: int) -> str:
    """The stored value with one byte of its nonce, ciphertext or tag changed."""
    prefix, encoded = stored.rsplit(":", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[position] ^= 0x01
    return f"{prefix}:{base64.b64encode(bytes(raw)).decode()}"


def test_a_value_round_trips_and_is_stored_with_its_key_id() -> None:
    keyring = Keyring([OLD])
    stored = keyring.encrypt(BODY, CONTEXT)
    assert stored.startswith("v1:old:")
    assert BODY not in stored
    assert key_id_of(stored) == "old"
    assert keyring.decrypt(stored, CONTEXT) == BODY


def test_each_value_gets_its_own_nonce() -> None:
    keyring = Keyring([OLD])
    first, second = keyring.encrypt(BODY, CONTEXT), keyring.encrypt(BODY, CONTEXT)
    assert first != second
    nonces = {base64.b64decode(s.rsplit(":", 1)[1])[:12] for s in (first, second)}
    assert len(nonces) == 2


def test_the_first_key_encrypts_and_an_old_key_still_decrypts() -> None:
    written_before = Keyring([OLD]).encrypt(BODY, CONTEXT)
    rotated = Keyring([NEW, OLD])
    assert rotated.current_id == "new"
    assert rotated.encrypt(BODY, CONTEXT).startswith("v1:new:")
    assert rotated.decrypt(written_before, CONTEXT) == BODY
    assert not rotated.is_current(written_before)


@pytest.mark.parametrize("position", [0, 11, 12, -17, -1])  # nonce, ciphertext, tag
def test_a_tampered_value_fails_loudly(position: int) -> None:
    keyring = Keyring([OLD])
    tampered = _flip(keyring.encrypt(BODY, CONTEXT), position)
    with pytest.raises(DecryptionError, match="fails authentication"):
        keyring.decrypt(tampered, CONTEXT)


def test_a_value_moved_to_another_column_fails() -> None:
    keyring = Keyring([OLD])
    subject = keyring.encrypt("Renouvellement", "thread.subject")
    with pytest.raises(DecryptionError, match=r"message\.body"):
        keyring.decrypt(subject, CONTEXT)


def test_a_value_under_the_same_id_but_another_key_fails() -> None:
    stored = Keyring([("k", os.urandom(32))]).encrypt(BODY, CONTEXT)
    with pytest.raises(DecryptionError):
        Keyring([("k", os.urandom(32))]).decrypt(stored, CONTEXT)


def test_an_unknown_key_id_is_named() -> None:
    stored = Keyring([OLD]).encrypt(BODY, CONTEXT)
    with pytest.raises(UnknownKeyError, match=r"'old'.*COLLOQUE_DATA_KEYS"):
        Keyring([NEW]).decrypt(stored, CONTEXT)


def test_a_truncated_value_fails() -> None:
    keyring = Keyring([OLD])
    stored = keyring.encrypt(BODY, CONTEXT)
    with pytest.raises(DecryptionError):
        keyring.decrypt(stored[:-8], CONTEXT)


@pytest.mark.parametrize(
    "legacy", ["Bonjour docteur", "v1: brouillon", "v1:dev:ok", "", "v1:clé:" + "A" * 60]
)
def test_plaintext_written_before_encryption_passes_through(legacy: str) -> None:
    assert Keyring([OLD]).decrypt(legacy, CONTEXT) == legacy
    assert key_id_of(legacy) is None


def test_the_empty_text_and_long_text_round_trip() -> None:
    keyring = Keyring([OLD])
    for text in ("", "é" * 5000):
        assert keyring.decrypt(keyring.encrypt(text, CONTEXT), CONTEXT) == text


# --- COLLOQUE_DATA_KEYS --------------------------------------------------------------------------

PRODUCTION = {"COLLOQUE_ENV": "production", "SECRET_KEY": "s" * 40}


def _entry(key_id: str, key: bytes) -> str:
    return f"{key_id}:{base64.b64encode(key).decode()}"


def test_development_works_with_the_documented_development_key() -> None:
    settings = load_settings({})
    assert settings.data_keys == (DEVELOPMENT_DATA_KEY,)
    assert settings.data_keys[0][0] == "dev"


def test_production_refuses_to_start_without_data_keys() -> None:
    with pytest.raises(SettingsError, match="COLLOQUE_DATA_KEYS"):
        load_settings(PRODUCTION)


def test_production_refuses_the_development_key() -> None:
    with pytest.raises(SettingsError, match="COLLOQUE_DATA_KEYS"):
        load_settings({**PRODUCTION, "COLLOQUE_DATA_KEYS": _entry("prod", DEVELOPMENT_DATA_KEY[1])})


def test_keys_are_read_in_order_the_first_being_current() -> None:
    value = f" {_entry(*NEW)} , {_entry(*OLD)} "
    settings = load_settings({**PRODUCTION, "COLLOQUE_DATA_KEYS": value})
    assert settings.data_keys == (NEW, OLD)
    assert Keyring(settings.data_keys).current_id == "new"


@pytest.mark.parametrize(
    "value",
    [
        "nokeyid",
        ":" + base64.b64encode(os.urandom(32)).decode(),
        "bad id:" + base64.b64encode(os.urandom(32)).decode(),
        "short:" + base64.b64encode(os.urandom(16)).decode(),
        "notbase64:" + "é" * 44,
        f"{_entry('a', os.urandom(32))},{_entry('a', os.urandom(32))}",
        f"{_entry('a', os.urandom(32))},",
    ],
)
def test_malformed_keys_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(SettingsError, match="COLLOQUE_DATA_KEYS") as refused:
        load_settings({**PRODUCTION, "COLLOQUE_DATA_KEYS": value})
    encoded = value.rsplit(":", 1)[-1]
    assert len(encoded) < 20 or encoded not in str(refused.value)


def test_keys_never_show_in_the_settings_repr() -> None:
    settings = load_settings({**PRODUCTION, "COLLOQUE_DATA_KEYS": _entry(*NEW)})
    assert base64.b64encode(NEW[1]).decode() not in repr(settings)
    assert repr(NEW[1]) not in repr(settings)
