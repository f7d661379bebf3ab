"""The patient's pages: home and new request."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.actions import threads
from server.auth import current_user, guarded
from server.models import Category, Role
from server.queries import patient_threads, practitioner_choices
from server.rules.refusal import Refused
from server.rules.validation import clean_text, parse_int
from server.views.auth import HOME_OF_ROLE
from server.views.rendering import render


@guarded()
async def home(request: Request) -> Response:
    user = await current_user(request)
    assert user is not None
    if user.role != Role.PATIENT:
        return RedirectResponse(HOME_OF_ROLE[Role(user.role)], status_code=303)
    return render(
        request,
        "pages/patient_home.html",
        {"rows": await patient_threads(user), "choices": await practitioner_choices(user)},
    )


async def _new_request_page(
    request: Request, form: dict[str, str], error: str | None = None, status: int = 200
) -> Response:
    user = await current_user(request)
    assert user is not None
    return render(
        request,
        "pages/new_request.html",
        {
            "choices": await practitioner_choices(user),
            "categories": list(Category),
            "form": form,
            "error": error,
        },
        status,
    )


@guarded(Role.PATIENT)
async def new_request(request: Request) -> Response:
    practitioner_id = request.query_params.get("practitioner_id", "")
    return await _new_request_page(request, {"practitioner_id": practitioner_id})


@guarded(Role.PATIENT)
async def create_request(request: Request) -> Response:
    user = await current_user(request)
    assert user is not None
    raw = await request.form()
    form = {
        name: clean_text(raw.get(name))
        for name in ("practitioner_id", "category", "subject", "body")
    }
    try:
        thread = await threads.open_request(
            user,
            parse_int(form["practitioner_id"], 1, 2**31 - 1),
            form["category"],
            form["subject"],
            form["body"],
        )
    except Refused as refused:
        return await _new_request_page(
            request, form, refused.refusal.message, refused.refusal.status
        )
    return RedirectResponse(f"/threads/{thread.id}", status_code=303)
