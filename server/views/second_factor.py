"""The account page (two-step verification, logging out everywhere) and the code step of login."""

from __future__ import annotations

from typing import Any

import segno
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.actions import login_throttle, logout, second_factor
from server.auth import current_session, current_user, guarded, is_secure, session_cookie_name
from server.models import Role, User
from server.rules import second_factor as rules
from server.rules.refusal import Refused
from server.rules.throttle import LOGIN_LIMITS
from server.translatable import N_
from server.views import pending_login
from server.views.auth import open_session
from server.views.password import client_address, too_many_attempts
from server.views.rendering import render, translate

#: Set when a patient closes the suggestion to turn two-step verification on.
SUGGESTION_COOKIE = "colloque_second_factor_hint"

_EXPIRED = N_("Your login took too long or is no longer valid. Please log in again.")
_WRONG_CODE = N_("This code is not valid, or was already used.")


def _secret_key(request: Request) -> str:
    return str(request.app.state.settings.secret_key)


async def _user(request: Request) -> User:
    user = await current_user(request)
    assert user is not None
    return user


async def _account_page(
    request: Request, user: User, error: str | None = None, status: int = 200
) -> Response:
    enabled = second_factor.is_enabled(user)
    context: dict[str, Any] = {
        "enabled": enabled,
        "pending": not enabled and user.totp_secret is not None,
        "must_enrol": not enabled and await second_factor.is_required(user),
        "remaining_codes": await second_factor.remaining_recovery_codes(user) if enabled else 0,
        "error": translate(request, error) if error else None,
        "notice": request.query_params.get("done"),
    }
    return render(request, "pages/second_factor_account.html", context, status)


@guarded()
async def account_page(request: Request) -> Response:
    return await _account_page(request, await _user(request))


@guarded()
async def start(request: Request) -> Response:
    user = await _user(request)
    try:
        await second_factor.start_enrolment(user)
    except Refused as refused:
        return await _account_page(request, user, refused.refusal.message, refused.refusal.status)
    return RedirectResponse("/account/second-factor", status_code=303)


def _setup_context(user: User) -> dict[str, Any]:
    assert user.totp_secret is not None
    uri = second_factor.provisioning_uri(user)
    return {
        "secret": rules.show_secret(user.totp_secret),
        "uri": uri,
        # An <img> with a data: URI: no script, and the policy's img-src allows data:.
        "qr": segno.make(uri, error="m").svg_data_uri(scale=5, border=2),
    }


@guarded()
async def setup_page(request: Request) -> Response:
    user = await _user(request)
    if second_factor.is_enabled(user) or user.totp_secret is None:
        return RedirectResponse("/account", status_code=303)
    return render(request, "pages/second_factor_setup.html", _setup_context(user))


def _codes_page(request: Request, codes: list[str]) -> Response:
    """The recovery codes, in this answer only: they are stored as hashes."""
    return render(request, "pages/second_factor_codes.html", {"codes": codes})


@guarded()
async def confirm(request: Request) -> Response:
    user = await _user(request)
    form = await request.form()
    try:
        codes = await second_factor.confirm_enrolment(user, form.get("code"), _secret_key(request))
    except Refused as refused:
        if user.totp_secret is None or second_factor.is_enabled(user):
            return await _account_page(
                request, user, refused.refusal.message, refused.refusal.status
            )
        context = _setup_context(user) | {"error": translate(request, refused.refusal.message)}
        return render(request, "pages/second_factor_setup.html", context, refused.refusal.status)
    return _codes_page(request, codes)


@guarded()
async def renew_codes(request: Request) -> Response:
    user = await _user(request)
    form = await request.form()
    try:
        codes = await second_factor.regenerate_recovery_codes(
            user, form.get("code"), _secret_key(request)
        )
    except Refused as refused:
        return await _account_page(request, user, refused.refusal.message, refused.refusal.status)
    return _codes_page(request, codes)


@guarded()
async def disable(request: Request) -> Response:
    user = await _user(request)
    form = await request.form()
    try:
        await second_factor.disable(user, form.get("code"), _secret_key(request))
    except Refused as refused:
        return await _account_page(request, user, refused.refusal.message, refused.refusal.status)
    return RedirectResponse("/account?done=disabled", status_code=303)


@guarded()
async def dismiss_suggestion(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    # A year: the suggestion comes back only on another device or after a year.
    response.set_cookie(
        SUGGESTION_COOKIE,
        "dismissed",
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
    )
    return response


@guarded()
async def logout_everywhere(request: Request) -> Response:
    """End every session of the user, this one included, and their live streams with them."""
    session = await current_session(request)
    assert session is not None
    ended = await logout.end_every_session(session.user)
    # This process's streams close at once even if the broker is down (as for logout).
    if request.app.state.hub is not None:
        for session_id in ended:
            request.app.state.hub.close_session(session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(session_cookie_name(request), path="/")
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


def _code_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    return render(request, "pages/second_factor_login.html", {"error": error}, status)


def _expired(request: Request) -> Response:
    response = render(request, "pages/login.html", {"email": "", "error": _EXPIRED}, 401)
    pending_login.forget(request, response)
    return response


@guarded(login=False)
async def login_code_page(request: Request) -> Response:
    if pending_login.read(request) is None:
        return RedirectResponse("/login", status_code=303)
    return _code_page(request)


@guarded(login=False)
async def login_code(request: Request) -> Response:
    """A code from the app or a recovery code turns the pending login into a session.

    Wrong codes count as failed logins of the account and the address, like wrong passwords.
    """
    pending = pending_login.read(request)
    email = await second_factor.email_of(pending.user_id) if pending else None
    if pending is None or email is None:
        return _expired(request)
    keys = login_throttle.throttle_keys(_secret_key(request), email, client_address(request))
    retry_after = await login_throttle.check_login(keys, email)
    if retry_after:
        return too_many_attempts(request, "pages/second_factor_login.html", {}, retry_after)
    form = await request.form()
    user = await second_factor.complete_login(
        pending.user_id, pending.issued_step, form.get("code"), _secret_key(request)
    )
    if user is None:
        await login_throttle.record_failure(keys, LOGIN_LIMITS)
        if await second_factor.pending_login_spent(pending.user_id, pending.issued_step):
            return _expired(request)
        return _code_page(request, _WRONG_CODE, 401)
    await login_throttle.clear_account(keys)
    response = await open_session(request, user)
    pending_login.forget(request, response)
    return response


@guarded(Role.PRACTITIONER, Role.ADMIN)
async def save_patient_requirement(request: Request) -> Response:
    """The practice setting "patients must use two-step verification" (settings page)."""
    user = await _user(request)
    form = await request.form()
    try:
        await second_factor.set_patient_requirement(
            user, form.get("require_patient_second_factor") == "on"
        )
    except Refused as refused:
        return render(
            request,
            "pages/error.html",
            {"message": refused.refusal.message},
            refused.refusal.status,
        )
    return RedirectResponse("/settings?saved=1", status_code=303)
