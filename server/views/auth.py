"""Login, logout and language choice."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.actions import audit, login_throttle, second_factor
from server.auth import current_session, guarded, session_cookie_name, set_cookie
from server.i18n import LOCALES
from server.models import Role, User
from server.passwords import hash_password, needs_rehash, verify_password
from server.rules.throttle import LOGIN_LIMITS
from server.rules.validation import clean_text
from server.sessions import end_session, sign, start_session
from server.streams import announce_session_end
from server.translatable import N_
from server.views import pending_login
from server.views.password import client_address, too_many_attempts
from server.views.rendering import LOCALE_COOKIE, render

HOME_OF_ROLE = {
    Role.PATIENT: "/",
    Role.PRACTITIONER: "/inbox",
    Role.SECRETARY: "/queue",
    Role.ADMIN: "/queue",
}

# Long enough for any passphrase, short enough that hashing cannot be used to exhaust memory.
_MAX_PASSWORD_CHARS = 1024


@guarded(login=False)
async def login_page(request: Request) -> Response:
    session = await current_session(request)
    if session is not None:
        return RedirectResponse(HOME_OF_ROLE[Role(session.user.role)], status_code=303)
    return render(request, "pages/login.html", {"email": ""})


@guarded(login=False)
async def login(request: Request) -> Response:
    form = await request.form()
    email = clean_text(form.get("email")).lower()
    password = form.get("password")
    if not email or not isinstance(password, str) or not password:
        return render(
            request,
            "pages/login.html",
            {"email": email, "error": N_("Please enter your email address and your password.")},
            400,
        )
    keys = login_throttle.throttle_keys(
        request.app.state.settings.secret_key, email, client_address(request)
    )
    retry_after = await login_throttle.check_login(keys, email)
    if retry_after:
        # Refused before the password is checked, unknown emails alike: a guess sent during
        # the wait is never tested.
        return too_many_attempts(request, "pages/login.html", {"email": email}, retry_after)
    user = await User.get_or_none(email=email, is_active=True) if len(email) <= 254 else None
    valid = len(password) <= _MAX_PASSWORD_CHARS and await verify_password(
        user.password_hash if user else None, password
    )
    if user is None or not valid:
        await login_throttle.record_failure(keys, LOGIN_LIMITS)
        if user is None:
            await audit.record(None, "login.failed", outcome=audit.DENIED)
        else:
            await audit.record_account(user, "login.failed", outcome=audit.DENIED)
        # One message whether the account exists or not: no account enumeration.
        return render(
            request,
            "pages/login.html",
            {"email": email, "error": N_("Incorrect email address or password.")},
            401,
        )
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
        await user.save(update_fields=["password_hash"])
    if second_factor.is_enabled(user):
        # No session yet: the code page turns this pending login into one. The account's
        # failures are forgotten only then, or the password would buy fresh guesses at codes.
        return pending_login.ask_for_second_factor(request, user)
    await login_throttle.clear_account(keys)
    return await open_session(request, user)


async def open_session(request: Request, user: User) -> Response:
    """The end of a login: a new session (a new id, the old one ended) and the way home."""
    old = await current_session(request)
    if old is not None:
        await end_session(old.key)
    key = await start_session(user)
    await audit.record_account(user, "login.succeeded")
    response = RedirectResponse(HOME_OF_ROLE[Role(user.role)], status_code=303)
    set_cookie(
        response,
        request,
        session_cookie_name(request),
        sign(request.app.state.settings.secret_key, key),
    )
    return response


@guarded()
async def logout(request: Request) -> Response:
    session = await current_session(request)
    assert session is not None
    await end_session(session.key)
    await audit.record_account(session.user, "logout")
    # This process's streams close at once even if the broker is down; the others hear it
    # through the broker, or re-check their sessions when it comes back.
    if request.app.state.hub is not None:
        request.app.state.hub.close_session(session.session_id)
    await announce_session_end(session.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(session_cookie_name(request), path="/")
    # Pages read with health data may linger in the browser's caches and storage (htmx keeps
    # page snapshots there): wipe them. Not "cookies": that would also drop the language
    # choice for nothing, and the session cookie is deleted just above.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@guarded(login=False)
async def choose_language(request: Request) -> Response:
    form = await request.form()
    locale = clean_text(form.get("locale"))
    if locale not in LOCALES:
        return render(request, "pages/error.html", {"message": N_("Unknown language.")}, 400)
    session = await current_session(request)
    if session is not None:
        await User.filter(id=session.user.id).update(locale=locale)
    back = clean_text(form.get("next"))
    # Only a path of this site: an absolute or protocol-relative URL would be an open redirect.
    target = back if back.startswith("/") and not back.startswith(("//", "/\\")) else "/"
    response = RedirectResponse(target, status_code=303)
    set_cookie(response, request, LOCALE_COOKIE, locale)
    return response
