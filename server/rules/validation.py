"""Shape of what people type: lengths and choices, checked before anything is stored."""

from __future__ import annotations

from server.crypto import key_id_of
from server.models import Category
from server.rules.refusal import Refusal
from server.translatable import N_

# A message is a note to a practice, not a medical file: 5,000 characters is about two pages.
MAX_BODY_CHARS = 5000
MAX_SUBJECT_CHARS = 150
MAX_REASON_CHARS = 1000
MAX_AWAY_MESSAGE_CHARS = 1000

EMPTY_BODY = Refusal("empty_body", N_("Please write a message."), 400)
BODY_TOO_LONG = Refusal(
    "body_too_long", N_("Your message is too long (5,000 characters at most)."), 413
)
EMPTY_SUBJECT = Refusal("empty_subject", N_("Please give your request a subject."), 400)
SUBJECT_TOO_LONG = Refusal(
    "subject_too_long", N_("The subject is too long (150 characters at most)."), 400
)
BAD_CATEGORY = Refusal("bad_category", N_("Please choose the kind of request."), 400)
REASON_TOO_LONG = Refusal(
    "reason_too_long", N_("The reason is too long (1,000 characters at most)."), 400
)
# Text shaped exactly like an encrypted value at rest would be read back as one: refused, since
# nobody writes that by hand.
LOOKS_ENCRYPTED = Refusal(
    "looks_encrypted", N_("This text cannot be saved as it is. Please rephrase it."), 400
)
BAD_NUMBER = Refusal("bad_number", N_("Please enter a whole number in the allowed range."), 400)


def clean_text(value: object) -> str:
    """Form values arrive as str, UploadFile or None; only a str is text."""
    if not isinstance(value, str):
        return ""
    # Browsers send CRLF in textareas; NUL bytes are refused by PostgreSQL text columns.
    return value.replace("\r\n", "\n").replace("\x00", "").strip()


def check_storable(text: str) -> Refusal | None:
    """Whether text may go into a column encrypted at rest."""
    return LOOKS_ENCRYPTED if key_id_of(text) is not None else None


def check_body(body: str) -> Refusal | None:
    if not body:
        return EMPTY_BODY
    if len(body) > MAX_BODY_CHARS:
        return BODY_TOO_LONG
    return check_storable(body)


def check_subject(subject: str) -> Refusal | None:
    if not subject:
        return EMPTY_SUBJECT
    if len(subject) > MAX_SUBJECT_CHARS:
        return SUBJECT_TOO_LONG
    return check_storable(subject)


def parse_category(value: str) -> Category | None:
    try:
        return Category(value)
    except ValueError:
        return None


def parse_int(value: object, low: int, high: int) -> int | None:
    """A whole number within [low, high] from form text, or None."""
    text = value.strip() if isinstance(value, str) else ""
    # isdigit() alone accepts superscripts and other scripts' digits that int() refuses.
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if low <= number <= high else None
