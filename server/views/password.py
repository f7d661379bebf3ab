"""Forgotten password: ask for a reset link, open it, choose a new password."""

from __future__ import annotations

from functools import partial

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from server import outbox
from server.actions import login_throttle, password_reset
from server.auth import guarded, session_cookie_name
from server.rules.refusal import Refusal, Refused
from server.rules.throttle import RESET_REQUEST_LIMITS, retry_after_seconds
from server.rules.validation import clean_text
from server.streams import announce_session_end
from server.translatable import N_
from server.views.rendering import render

_LINK_REFUSALS = (
    password_reset.UNKNOWN_LINK,
    password_reset.EXPIRED_LINK,
    password_reset.USED_LINK,
)
BAD_EMAIL = N_("Please enter the email address of your account.")
TOO_MANY_ATTEMPTS = N_(
    "Too many attempts for this account or from this connection. "
    "For your security, please wait before trying again."
)
# The login page shows this notice after a reset (`/login?notice=password-changed`).
NOTICE_AFTER_RESET = "password-changed"


def client_address(request: Request) -> str | None:
    """The caller's IP address. Behind a reverse proxy, uvicorn's proxy headers support (on in
    `colloque serve`, for the proxies `FORWARDED_ALLOW_IPS` names) puts the X-Forwarded-For
    client here instead of the proxy's own address."""
    return request.client.host if request.client else None


def too_many_attempts(
    request: Request, template: str, context: dict[str, object], retry_after: int
) -> HTMLResponse:
    """429 with the form again, the wait in words and in Retry-After."""
    response = render(
        request,
        template,
        {**context, "error": TOO_MANY_ATTEMPTS, "retry_after": retry_after},
        429,
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


@guarded(login=False)
async def forgot_page(request: Request) -> Response:
    return render(request, "pages/password_forgot.html", {"email": ""})


@guarded(login=False)
async def forgot(request: Request) -> Response:
    """The same answer whether the account exists or not; the email goes out after it."""
    form = await request.form()
    email = login_throttle.normalise_email(clean_text(form.get("email")))
    if not email or "@" not in email or len(email) > 254:
        return render(
            request, "pages/password_forgot.html", {"email": email, "error": BAD_EMAIL}, 400
        )
    keys = login_throttle.throttle_keys(
        request.app.state.settings.secret_key, email, client_address(request), purpose="reset"
    )
    wait = await login_throttle.wait_for(keys, RESET_REQUEST_LIMITS)
    if wait:
        return too_many_attempts(
            request, "pages/password_forgot.html", {"email": email}, retry_after_seconds(wait)
        )
    await login_throttle.record_failure(keys, RESET_REQUEST_LIMITS)
    response = render(request, "pages/password_forgot_sent.html")
    # Looking the account up, storing the link and writing the email all happen after the
    # answer is sent, so its timing cannot tell whether the account exists.
    response.background = BackgroundTask(
        password_reset.request_reset,
        email,
        partial(outbox.link, request_base_url=str(request.base_url)),
    )
    return response


def _invalid_link(request: Request, refusal: Refusal) -> Response:
    return render(
        request,
        "pages/password_reset_invalid.html",
        {"message": refusal.message},
        refusal.status,
    )


@guarded(login=False)
async def reset_page(request: Request) -> Response:
    token = request.path_params["token"]
    try:
        await password_reset.find_reset(token)
    except Refused as refused:
        return _invalid_link(request, refused.refusal)
    return render(request, "pages/password_reset.html", {"token": token})


@guarded(login=False)
async def reset(request: Request) -> Response:
    token = request.path_params["token"]
    form = await request.form()
    password = form.get("password")
    confirmation = form.get("password_confirmation")
    try:
        changed = await password_reset.reset_password(
            token,
            password if isinstance(password, str) else "",
            confirmation if isinstance(confirmation, str) else "",
        )
    except Refused as refused:
        if refused.refusal in _LINK_REFUSALS:
            return _invalid_link(request, refused.refusal)
        return render(
            request,
            "pages/password_reset.html",
            {"token": token, "error": refused.refusal.message},
            refused.refusal.status,
        )
    # Whoever proves they read the mailbox is the account's owner: their login waits end too.
    await login_throttle.clear_account(
        login_throttle.throttle_keys(request.app.state.settings.secret_key, changed.email, None)
    )
    # As at logout: this process's streams close at once, the others hear it through the broker.
    for session_id in changed.ended_session_ids:
        if request.app.state.hub is not None:
            request.app.state.hub.close_session(session_id)
        await announce_session_end(session_id)
    response = RedirectResponse(f"/login?notice={NOTICE_AFTER_RESET}", status_code=303)
    response.delete_cookie(session_cookie_name(request), path="/")
    return response
