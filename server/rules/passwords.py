"""Which new passwords are accepted: length and known-bad values, no composition rules.

NIST SP 800-63B (5.1.1.2) and the ANSSI's guide on authentication agree: length protects, forced
mixes of digits and symbols do not (people write "Password1!"); refuse instead the passwords
attackers try first. The same rule applies wherever a password is set.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

from server.rules.refusal import Refusal
from server.translatable import N_

# Counted in Unicode code points after NFC, so "é" typed either way counts once.
MIN_PASSWORD_CHARS = 12
# Long enough for any passphrase, short enough that hashing cannot be used to exhaust memory.
MAX_PASSWORD_CHARS = 1024
# A shorter local part ("jo@…") would refuse most passwords for a coincidence, not a weakness.
_MIN_LOCAL_PART_CHARS = 3

_COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt"

TOO_SHORT = Refusal(
    "password_too_short",
    N_("Your password is too short: it must be at least 12 characters long."),
    400,
)
TOO_LONG = Refusal(
    "password_too_long",
    N_("Your password is too long: it must be at most 1,024 characters long."),
    400,
)
TOO_COMMON = Refusal(
    "password_too_common",
    N_(
        "This password is one of the most commonly used ones, the first an attacker tries. "
        "Please choose another, for example a few unrelated words."
    ),
    400,
)
CONTAINS_EMAIL = Refusal(
    "password_contains_email",
    N_("Your password must not be or contain your email address."),
    400,
)
MISMATCH = Refusal("password_mismatch", N_("The two passwords you typed are not the same."), 400)


def normalise_password(password: str) -> str:
    """The form a password is hashed and checked in: NFC, so every keyboard types it alike."""
    return unicodedata.normalize("NFC", password)


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of the 10,000 most common passwords, case-folded."""
    lines = _COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(
        normalise_password(line).casefold() for line in lines if line and not line.startswith("#")
    )


def check_new_password(
    password: str, email: str, common: frozenset[str] | None = None
) -> Refusal | None:
    """Why `password` may not become the password of the account `email`, or None if it may."""
    password = normalise_password(password)
    if len(password) < MIN_PASSWORD_CHARS:
        return TOO_SHORT
    if len(password) > MAX_PASSWORD_CHARS:
        return TOO_LONG
    folded = password.casefold()
    if folded in (common_passwords() if common is None else common):
        return TOO_COMMON
    email = email.strip().casefold()
    local_part = email.partition("@")[0]
    if email and (
        folded == email or (len(local_part) >= _MIN_LOCAL_PART_CHARS and local_part in folded)
    ):
        return CONTAINS_EMAIL
    return None
