"""Emergency guidance while the patient is still typing, before anything is sent."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from server.auth import guarded
from server.models import Role
from server.rules.validation import MAX_BODY_CHARS, clean_text
from server.views.rendering import render
from workers.triage.detector import assess


@guarded(Role.PATIENT)
async def preview(request: Request) -> Response:
    """The same detector as the worker, on the draft: the banner or nothing.

    Advice only: the form still sends whatever the answer, and a draft longer than a message
    may be is assessed on what could be sent.
    """
    draft = clean_text((await request.form()).get("body"))[:MAX_BODY_CHARS]
    assessment = assess(draft)
    if not assessment.emergency:
        return HTMLResponse("")
    return render(
        request,
        "partials/emergency_guidance.html",
        {"suicidal": assessment.suicidal, "sent": False, "guidance_key": "draft"},
    )
