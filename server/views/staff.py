"""Staff pages: the practitioner's inbox and settings, the secretaries' queue."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.actions import messages, practitioners, second_factor
from server.actions.visibility import thread_for
from server.auth import current_user, guarded
from server.models import Role
from server.queries import INBOX_FILTERS, inbox_threads, practice_team, queue_threads
from server.rules.refusal import Refused
from server.rules.validation import clean_text, parse_int
from server.views.rendering import is_htmx, render, translate
from server.views.threads import thread_context


@guarded(Role.PRACTITIONER)
async def inbox(request: Request) -> Response:
    """The thread list, and the selected thread beside it (`?thread=ID`)."""
    user = await current_user(request)
    assert user is not None
    status_filter = request.query_params.get("status", "active")
    if status_filter not in INBOX_FILTERS:
        raise HTTPException(400, "Unknown status filter")
    context: dict[str, object] = {"status_filter": status_filter, "filters": INBOX_FILTERS}
    selected = request.query_params.get("thread")
    if selected is not None:
        thread = await thread_for(user, parse_int(selected, 1, 2**31 - 1))
        # Read before listing, so the open thread does not show as unread beside itself.
        await messages.mark_read(user, thread)
        context.update(await thread_context(user, thread))
    context["rows"] = await inbox_threads(user, status_filter)
    if is_htmx(request) and request.headers.get("hx-target") == "thread-list":
        return render(request, "partials/inbox_rows.html", context)
    return render(request, "pages/inbox.html", context)


@guarded(Role.SECRETARY, Role.ADMIN)
async def queue(request: Request) -> Response:
    user = await current_user(request)
    assert user is not None
    assert user.practice_id is not None
    rows = await queue_threads(user)
    context = {"rows": rows, "team": await practice_team(user.practice_id)}
    if is_htmx(request) and request.headers.get("hx-target") == "queue-list":
        return render(request, "partials/queue_rows.html", context)
    return render(request, "pages/queue.html", context)


@guarded(Role.PRACTITIONER)
async def settings_page(request: Request) -> Response:
    user = await current_user(request)
    assert user is not None
    settings = await practitioners.settings_for(user)
    return render(
        request,
        "pages/settings.html",
        {
            "settings": settings,
            "saved": "saved" in request.query_params,
            "patient_second_factor": await second_factor.patient_requirement(user),
        },
    )


@guarded(Role.PRACTITIONER)
async def save_settings(request: Request) -> Response:
    user = await current_user(request)
    assert user is not None
    form = await request.form()
    try:
        await practitioners.update_settings(
            user,
            messaging_enabled=form.get("messaging_enabled") == "on",
            accepting_requests=form.get("accepting_requests") == "on",
            away_message=clean_text(form.get("away_message")),
            response_days=parse_int(form.get("response_days"), 1, 30),
            max_open_requests_per_patient=parse_int(
                form.get("max_open_requests_per_patient"), 1, 20
            ),
        )
    except Refused as refused:
        settings = await practitioners.settings_for(user)
        return render(
            request,
            "pages/settings.html",
            {"settings": settings, "error": translate(request, refused.refusal.message)},
            refused.refusal.status,
        )
    return RedirectResponse("/settings?saved=1", status_code=303)
