"""The practice administrator's pages: the audit trail export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from server.actions import audit
from server.auth import current_user, guarded
from server.models import Practice, Role, User
from server.rules.audit_export import BAD_DATE, BAD_RANGE, HEADER, csv_row, day_range, parse_day
from server.rules.refusal import Refusal
from server.views.rendering import render, translate

# Rows read per query while streaming: memory stays flat whatever the period asked for.
_BATCH = 500
_DEFAULT_DAYS = 30


async def _administrator(request: Request) -> User:
    user = await current_user(request)
    assert user is not None
    if user.practice_id is None:
        # An administrator of no practice has no trail to see.
        raise HTTPException(404)
    return user


async def _page(
    request: Request, user: User, first: str, last: str, error: Refusal | None = None
) -> Response:
    practice = await Practice.get(id=user.practice_id)
    context = {
        "practice": practice,
        "first": first,
        "last": last,
        "error": translate(request, error.message) if error else None,
    }
    return render(request, "pages/admin_home.html", context, error.status if error else 200)


@guarded(Role.ADMIN)
async def home(request: Request) -> Response:
    user = await _administrator(request)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=_DEFAULT_DAYS)
    return await _page(request, user, first.isoformat(), today.isoformat())


async def _csv_lines(practice_id: int, start: datetime, end: datetime) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    after_id = 0
    while True:
        events = await audit.trail_for_practice(practice_id, start, end, after_id, _BATCH)
        for event in events:
            writer.writerow(
                csv_row(
                    event.created_at,
                    event.actor_id,
                    event.action,
                    event.object,
                    event.subject,
                    event.outcome,
                    event.thread_id,
                    event.detail,
                )
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(events) < _BATCH:
            return
        after_id = events[-1].id


@guarded(Role.ADMIN)
async def audit_csv(request: Request) -> Response:
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD` (UTC days, both included; the last 30 days by default)."""
    user = await _administrator(request)
    assert user.practice_id is not None
    raw_first = request.query_params.get("from")
    raw_last = request.query_params.get("to")
    today = datetime.now(UTC).date()
    last = parse_day(raw_last, today)
    first = parse_day(raw_first, (last or today) - timedelta(days=_DEFAULT_DAYS))
    if first is None or last is None:
        return await _page(request, user, raw_first or "", raw_last or "", BAD_DATE)
    if first > last:
        return await _page(request, user, first.isoformat(), last.isoformat(), BAD_RANGE)
    # Recorded before the first line leaves: an export cut short is still on the trail.
    await audit.record(
        user.id,
        "audit.exported",
        detail={"from": first.isoformat(), "to": last.isoformat()},
        practice_id=user.practice_id,
        object=f"practice:{user.practice_id}",
    )
    start, end = day_range(first, last)
    name = f"audit-{first.isoformat()}-{last.isoformat()}.csv"
    return StreamingResponse(
        _csv_lines(user.practice_id, start, end),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
