"""A thread: reading it, posting in it, and staff decisions on it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server import streams
from server.actions import messages, threads
from server.actions.visibility import may_read_content, thread_for
from server.auth import current_user, guarded
from server.models import Role, Thread, User
from server.queries import practice_team, thread_messages
from server.rules.access import is_staff
from server.rules.refusal import Refused
from server.rules.validation import clean_text, parse_int
from server.views.rendering import is_htmx, render, translate
from workers.triage.detector import assess

STAFF = (Role.PRACTITIONER, Role.SECRETARY, Role.ADMIN)
EVERYONE = (Role.PATIENT, *STAFF)


async def _caller_and_thread(request: Request) -> tuple[User, Thread]:
    user = await current_user(request)
    assert user is not None
    return user, await thread_for(user, request.path_params["thread_id"])


async def thread_context(user: User, thread: Thread) -> dict[str, object]:
    """What the thread templates need, shared by the page and its fragments."""
    staff = is_staff(Role(user.role))
    return {
        "thread": thread,
        "messages": await thread_messages(thread),
        "content_visible": may_read_content(user, thread),
        "is_staff": staff,
        "team": await practice_team(thread.practice_id) if staff else [],
        # The patient keeps seeing whom to call for as long as the conversation is flagged.
        "emergency_guidance": (
            {"suicidal": "suicidal" in thread.emergency_categories}
            if thread.emergency and not staff
            else None
        ),
    }


@guarded(*EVERYONE)
async def show(request: Request) -> Response:
    user, thread = await _caller_and_thread(request)
    await messages.mark_read(user, thread)
    context = await thread_context(user, thread)
    if is_htmx(request):
        return render(request, "partials/thread_panel.html", context)
    return render(request, "pages/thread.html", context)


async def _thread_answer(
    request: Request, user: User, thread: Thread, error: str | None = None, status: int = 200
) -> Response:
    """After a decision: the refreshed panel for htmx, else back to the thread page."""
    if error is None and not is_htmx(request):
        return RedirectResponse(f"/threads/{thread.id}", status_code=303)
    context = await thread_context(user, thread)
    context["error"] = translate(request, error) if error else None
    template = "partials/thread_panel.html" if is_htmx(request) else "pages/thread.html"
    return render(request, template, context, status)


@guarded(*EVERYONE)
async def post_message(request: Request) -> Response:
    user, thread = await _caller_and_thread(request)
    body = clean_text((await request.form()).get("body"))
    try:
        message = await messages.post_message(user, thread, body)
    except Refused as refused:
        if is_htmx(request):
            response = render(
                request,
                "partials/form_error.html",
                {"error": translate(request, refused.refusal.message)},
                refused.refusal.status,
            )
            response.headers["HX-Retarget"] = "#message-error"
            response.headers["HX-Reswap"] = "innerHTML"
            return response
        context = await thread_context(user, thread)
        context.update(error=translate(request, refused.refusal.message), draft=body)
        return render(request, "pages/thread.html", context, refused.refusal.status)
    if is_htmx(request):
        # Out of band, like the live copy of the same message: the page keeps whichever
        # arrives first, so the author sees it even while their stream reconnects.
        message.author = user
        # The author's own answer carries the guidance at once when the detector would flag the
        # message: the worker's flag follows through the stream (other tabs, staff, replay).
        assessment = assess(body) if user.role == Role.PATIENT else None
        return render(
            request,
            "partials/message_posted.html",
            {
                "message": message,
                "thread": thread,
                "content_visible": True,
                "guidance": (
                    {"suicidal": assessment.suicidal}
                    if assessment is not None and assessment.emergency
                    else None
                ),
            },
            201,
        )
    return RedirectResponse(f"/threads/{thread.id}", status_code=303)


async def _decide(request: Request, action: str) -> Response:
    user, thread = await _caller_and_thread(request)
    form = await request.form()
    try:
        if action == "accept":
            await threads.accept(user, thread)
        elif action == "decline":
            await threads.decline(user, thread, clean_text(form.get("reason")))
        elif action == "close":
            await threads.close(user, thread)
        else:
            raw = clean_text(form.get("assignee_id"))
            assignee_id = None if raw in ("", "none") else parse_int(raw, 1, 2**31 - 1)
            if raw == "self":
                assignee_id = user.id
            elif raw not in ("", "none") and assignee_id is None:
                raise Refused(threads.NOT_STAFF_OF_PRACTICE)
            await threads.assign(user, thread, assignee_id)
    except Refused as refused:
        return await _thread_answer(
            request, user, thread, refused.refusal.message, refused.refusal.status
        )
    return await _thread_answer(request, user, thread)


@guarded(*STAFF)
async def accept(request: Request) -> Response:
    return await _decide(request, "accept")


@guarded(*STAFF)
async def decline(request: Request) -> Response:
    return await _decide(request, "decline")


@guarded(*STAFF)
async def close(request: Request) -> Response:
    return await _decide(request, "close")


@guarded(Role.SECRETARY, Role.ADMIN, Role.PRACTITIONER)
async def assign(request: Request) -> Response:
    return await _decide(request, "assign")


@guarded(*EVERYONE)
async def typing(request: Request) -> Response:
    """The patient is writing: staff who see the thread are told, nothing is stored."""
    user, thread = await _caller_and_thread(request)
    await streams.announce_typing(thread, user)
    return Response(status_code=204)
