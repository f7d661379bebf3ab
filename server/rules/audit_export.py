"""The audit trail as CSV lines for a practice administrator: pure functions, no I/O."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from server.rules.refusal import Refusal
from server.translatable import N_

HEADER = ("time_utc", "actor_id", "action", "object", "subject", "outcome", "thread_id", "detail")

BAD_DATE = Refusal("bad_date", N_("Dates are written YYYY-MM-DD, for example 2026-01-31."), 400)
BAD_RANGE = Refusal("bad_range", N_("The start date must not be after the end date."), 400)

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection, OWASP).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def safe_cell(value: str) -> str:
    """The cell as text a spreadsheet will not evaluate: a leading quote disarms a formula."""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def parse_day(value: str | None, default: date) -> date | None:
    """A `YYYY-MM-DD` day, `default` when absent, None when malformed."""
    if value is None or value == "":
        return default
    if not _ISO_DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def day_range(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC covering every day from `first` to `last`, both included."""
    return (
        datetime.combine(first, time.min, UTC),
        datetime.combine(last + timedelta(days=1), time.min, UTC),
    )


def csv_row(
    created_at: datetime,
    actor_id: int | None,
    action: str,
    object_: str,
    subject: str,
    outcome: str,
    thread_id: int | None,
    detail: dict[str, Any],
) -> list[str]:
    cells = [
        created_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "" if actor_id is None else str(actor_id),
        action,
        object_,
        subject,
        outcome,
        "" if thread_id is None else str(thread_id),
        json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    ]
    return [safe_cell(cell) for cell in cells]
