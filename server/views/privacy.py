"""A patient's data: download a copy of it, or close the account."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from server.actions import privacy
from server.auth import current_session, current_user, guarded, session_cookie_name
from server.models import Role, User
from server.rules.refusal import Refused
from server.translatable import N_
from server.views.rendering import environment, render, request_locale, translate

# As at login: long enough for any passphrase, short enough that hashing cannot exhaust memory.
_MAX_PASSWORD_CHARS = 1024


@guarded(Role.PATIENT)
async def export_page(request: Request) -> Response:
    return render(request, "pages/privacy_export.html")


@guarded(Role.PATIENT)
async def export(request: Request) -> Response:
    """`application/zip`: data.json and a readable index.html, both made for this patient."""
    patient = await current_user(request)
    assert patient is not None
    data = await privacy.export_data(patient)
    # A file opened from disk, long after: self-contained, escaped, no script, no link out.
    document = environment(request_locale(request)).get_template(
        "pages/privacy_export_document.html"
    )
    readable = document.render(data=data)
    await privacy.record_export(patient)
    day = datetime.now(UTC).date().isoformat()
    return Response(
        privacy.archive(data, readable),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="colloque-export-{day}.zip"',
            "Cache-Control": "no-store",
        },
    )


def _close_page(
    request: Request, user: User, error: str | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "pages/privacy_close.html",
        {"staff": user.role != Role.PATIENT, "error": translate(request, error) if error else None},
        status,
    )


@guarded()
async def close_page(request: Request) -> Response:
    """Every role may look: staff read why their account is not closed here."""
    user = await current_user(request)
    assert user is not None
    return _close_page(request, user)


@guarded()
async def close(request: Request) -> Response:
    session = await current_session(request)
    assert session is not None
    password = (await request.form()).get("password")
    if not isinstance(password, str) or len(password) > _MAX_PASSWORD_CHARS:
        password = ""
    if not password and session.user.role == Role.PATIENT:
        return _close_page(request, session.user, N_("Please enter your password."), 400)
    try:
        session_ids = await privacy.close_account(session.user, password)
    except Refused as refused:
        return _close_page(request, session.user, refused.refusal.message, refused.refusal.status)
    hub = request.app.state.hub
    if hub is not None:
        for session_id in session_ids:
            hub.close_session(session_id)
    # The page that says goodbye is a visitor's page: no account, no live stream.
    request.state.session = None
    request.state.live_cursor = None
    response = render(request, "pages/privacy_closed.html")
    response.delete_cookie(session_cookie_name(request), path="/")
    # As at logout: pages read with health data may linger in the browser.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response
