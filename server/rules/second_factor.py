"""Second factor: who must have one, how a one-time code is matched to a time step, and the
shape of codes people type. Pure."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

from server.models import Role
from server.rules.access import is_staff
from server.rules.refusal import Refusal
from server.translatable import N_

# RFC 6238 with the parameters every authenticator app supports: 30-second steps, 6 digits,
# HMAC-SHA-1 (SHA-256 secrets are silently mishandled by several popular apps).
STEP_SECONDS = 30
DIGITS = 6
# One step either side absorbs a phone clock a little off and the time taken to type the code
# (RFC 6238 section 5.2 recommends at most one step of network delay).
WINDOW = 1
# Long enough to find the phone and type a code, short enough that an unattended half-login
# does not linger.
PENDING_LOGIN_SECONDS = 5 * 60
RECOVERY_CODE_COUNT = 10
# 16 characters of a 31-letter alphabet: 79 bits each, so that even someone holding both the
# database and the server key cannot find a code by trying them all.
RECOVERY_CODE_CHARS = 16
# No 0/o, 1/l/i: codes are copied by hand from paper.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_GROUP = 4

# What a logged-in user who must enrol may still reach: the account page and the enrolment
# itself, logging out, the language switch and what the login page needs. Named one by one:
# other pages under /account (such as the data export) carry health data.
_OPEN_PAGES = frozenset({"/account", "/account/logout-everywhere", "/logout", "/language"})
_OPEN_PREFIXES = ("/account/second-factor", "/login")

BAD_CODE = Refusal(
    "second_factor.bad_code",
    N_("This code is not valid. Check the time on your phone and type the current code."),
    400,
)
NOT_PENDING = Refusal(
    "second_factor.not_pending",
    N_("Start the activation again: no authenticator is waiting to be confirmed."),
    409,
)
ALREADY_ENABLED = Refusal(
    "second_factor.already_enabled", N_("Two-step verification is already on."), 409
)
NOT_ENABLED = Refusal("second_factor.not_enabled", N_("Two-step verification is off."), 409)
NOT_PRACTICE_STAFF = Refusal(
    "second_factor.not_practice_staff", N_("Only the practice's staff may change this."), 403
)
ENROLMENT_REQUIRED = Refusal(
    "second_factor.enrolment_required",
    N_(
        "Your practice requires two-step verification. Set it up on your account page before "
        "going further."
    ),
    403,
)


def is_required(
    role: Role,
    staff_practice_requires: bool | None,
    patient_practices_require: Iterable[bool],
) -> bool:
    """Staff follow their practice's setting (staff without a practice always need one);
    a patient needs one as soon as one of the practices they are cared by asks for it."""
    if is_staff(role):
        return staff_practice_requires is None or staff_practice_requires
    return any(patient_practices_require)


def open_before_enrolment(path: str) -> bool:
    """Whether a user who must still enrol may reach `path`."""
    return path in _OPEN_PAGES or any(
        path == prefix or path.startswith(prefix + "/") for prefix in _OPEN_PREFIXES
    )


def time_step(now: float) -> int:
    return int(now // STEP_SECONDS)


def accepted_step(
    code: str, now: float, last_step: int, code_at: Callable[[int], str]
) -> int | None:
    """The time step `code` belongs to, within the window and strictly after the last step
    accepted (so that a code, once used, cannot be replayed); None if there is none."""
    current = time_step(now)
    for step in range(max(current - WINDOW, last_step + 1), current + WINDOW + 1):
        if hmac.compare_digest(code_at(step), code):
            return step
    return None


def clean_totp(raw: object) -> str | None:
    """Six digits, whatever spaces the app showed between them; None for anything else."""
    if not isinstance(raw, str):
        return None
    code = "".join(raw.split())
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    return code


def clean_recovery_code(raw: object) -> str | None:
    """A recovery code without its dashes or spaces, in lower case; None if it cannot be one."""
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    code = "".join(raw.replace("-", " ").split()).lower()
    if len(code) != RECOVERY_CODE_CHARS or any(c not in RECOVERY_ALPHABET for c in code):
        return None
    return code


def show_recovery_code(code: str) -> str:
    """`abcd-efgh-jkmn-pqrs`: groups are easier to copy and to read back."""
    return "-".join(code[i : i + _RECOVERY_GROUP] for i in range(0, len(code), _RECOVERY_GROUP))


def show_secret(secret: str) -> str:
    """The base32 secret in groups of four, for people who type it into their app."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def login_step_after(cookie_step: int, now: float) -> int:
    """What a recovery-code login moves `totp_last_step` to: past the value the pending login
    was issued with (so that this pending login cannot be used twice) and past the current
    step (so that a code seen over the user's shoulder now is useless)."""
    return max(cookie_step + 1, time_step(now))
