"""Who is asking: session cookie, CSRF token and role guards for handlers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response

from server.actions import audit, second_factor
from server.models import Role, User
from server.rules.second_factor import ENROLMENT_REQUIRED, open_before_enrolment
from server.sessions import ActiveSession, load_session, sign, unsign
from server.streams import latest_event_id

SESSION_COOKIE = "colloque_session"
# Binds the CSRF token of visitors who are not logged in yet (the login form).
ANONYMOUS_COOKIE = "colloque_visitor"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[Request], Awaitable[Response]]


def session_cookie_name(connection: HTTPConnection) -> str:
    """`__Host-` in production pins the cookie to our exact origin, over https only."""
    return (
        f"__Host-{SESSION_COOKIE}" if connection.app.state.settings.production else SESSION_COOKIE
    )


def is_secure(connection: HTTPConnection) -> bool:
    return connection.url.scheme in ("https", "wss") or connection.app.state.settings.production


def set_cookie(response: Response, connection: HTTPConnection, name: str, value: str) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="lax", secure=is_secure(connection), path="/"
    )


async def current_session(connection: HTTPConnection) -> ActiveSession | None:
    """The caller's live session, looked up once per request."""
    if "session" in connection.state._state:
        return connection.state.session
    secret = connection.app.state.settings.secret_key
    key = unsign(secret, connection.cookies.get(session_cookie_name(connection)))
    session = await load_session(key) if key else None
    connection.state.session = session
    return session


async def current_user(connection: HTTPConnection) -> User | None:
    session = await current_session(connection)
    return session.user if session else None


def _csrf_binding(request: Request) -> str | None:
    secret = request.app.state.settings.secret_key
    key = unsign(secret, request.cookies.get(session_cookie_name(request)))
    return key or unsign(secret, request.cookies.get(ANONYMOUS_COOKIE))


def csrf_token(request: Request) -> str:
    """The token for this visitor's pages; a new one after login since the session key changes.

    A visitor with neither cookie gets a fresh anonymous binding, which `remember_visitor` sets
    on the response.
    """
    binding = _csrf_binding(request)
    if binding is None:
        binding = request.state._state.setdefault("new_visitor", secrets.token_urlsafe(24))
    return csrf_token_for(request.app.state.settings.secret_key, binding)


def csrf_token_for(secret_key: str, binding: str) -> str:
    """The token bound to a session key (or an anonymous visitor's nonce)."""
    return hmac.new(secret_key.encode(), f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()


def remember_visitor(request: Request, response: Response) -> None:
    """Set the anonymous binding cookie if this request had to invent one."""
    new_visitor = request.state._state.get("new_visitor")
    if new_visitor:
        set_cookie(
            response,
            request,
            ANONYMOUS_COOKIE,
            sign(request.app.state.settings.secret_key, new_visitor),
        )


async def check_csrf(request: Request) -> None:
    """403 unless the request carries the token of this visitor's pages."""
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            sent = (await request.form()).get(CSRF_FIELD)
    valid = (
        _csrf_binding(request) is not None
        and isinstance(sent, str)
        and hmac.compare_digest(sent, csrf_token(request))
    )
    if not valid:
        await audit.record_refusal(await current_user(request), "csrf.denied", _route(request))
        raise HTTPException(403, "CSRF token missing or invalid")


def _route(connection: HTTPConnection) -> str:
    """What a refused request was after, for the audit trail: its path, never its query."""
    return f"route:{connection.url.path}"


def _to_enrolment(request: Request) -> Response:
    """Pages go to the account page, which explains; programs are told why they are refused."""
    if request.method == "GET" and "hx-request" not in request.headers:
        return RedirectResponse("/account", status_code=303)
    raise HTTPException(403, ENROLMENT_REQUIRED.message)


def guarded(*roles: Role, login: bool = True) -> Callable[[Handler], Handler]:
    """Wrap a handler: CSRF on unsafe methods, then login and role checks.

    A visitor who is not logged in is sent to the login page (pages) or told 401 (programs);
    a logged-in user of another role gets 404, as for any object that is not theirs; a user who
    must set up two-step verification first is sent to it (pages) or told 403 (programs).
    """

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def wrapper(request: Request) -> Response:
            if request.method in UNSAFE_METHODS:
                await check_csrf(request)
            if not login:
                return await handler(request)
            user = await current_user(request)
            if user is None:
                if request.method == "GET" and "hx-request" not in request.headers:
                    return RedirectResponse("/login", status_code=303)
                raise HTTPException(401, "Login required")
            if roles and user.role not in roles:
                await audit.record_refusal(user, "role.denied", _route(request))
                raise HTTPException(404)
            if await second_factor.must_enrol(user):
                # Required two-step verification not set up yet: the enrolment pages only, and
                # no live stream on them (no cursor).
                if not open_before_enrolment(request.url.path):
                    return _to_enrolment(request)
                return await handler(request)
            if request.method == "GET":
                # Read before the page's data: a live stream resuming from here may repeat a
                # change the page already shows (fragments are idempotent) but never skips one.
                request.state.live_cursor = await latest_event_id()
            return await handler(request)

        return wrapper

    return decorate
