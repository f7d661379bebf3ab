"""The half-done login between a correct password and the second factor, kept in a cookie.

The cookie is signed (server.sessions.sign), HttpOnly, SameSite=Lax and lives five minutes. It
names the user, the expiry, the user's last accepted TOTP step when it was issued (completing
the login moves that step on, which voids every copy of the cookie) and a random nonce (no two
pending logins share a value). It grants nothing by itself: only a code turns it into a session.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.auth import is_secure
from server.models import User
from server.rules.second_factor import PENDING_LOGIN_SECONDS
from server.sessions import sign, unsign

COOKIE = "colloque_pending_login"
PAGE = "/login/second-factor"
# Keeps a signed value of another kind (a session key, a visitor nonce) from passing as one.
_KIND = "pending-login"


@dataclass(frozen=True)
class PendingLogin:
    user_id: int
    issued_step: int


def _cookie_name(request: Request) -> str:
    return f"__Host-{COOKIE}" if request.app.state.settings.production else COOKIE


def ask_for_second_factor(request: Request, user: User) -> Response:
    """Answer a correct password of a user with two-step verification: to the code page."""
    expires = int(time.time()) + PENDING_LOGIN_SECONDS
    value = f"{_KIND}:{user.id}:{user.totp_last_step}:{expires}:{secrets.token_urlsafe(16)}"
    response = RedirectResponse(PAGE, status_code=303)
    response.set_cookie(
        _cookie_name(request),
        sign(request.app.state.settings.secret_key, value),
        max_age=PENDING_LOGIN_SECONDS,
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
        path="/",
    )
    return response


def read(request: Request) -> PendingLogin | None:
    """The pending login this browser carries, or None if absent, forged or expired."""
    value = unsign(
        request.app.state.settings.secret_key, request.cookies.get(_cookie_name(request))
    )
    if value is None:
        return None
    parts = value.split(":")
    if len(parts) != 5 or parts[0] != _KIND or not all(p.isdigit() for p in parts[1:4]):
        return None
    user_id, issued_step, expires = (int(p) for p in parts[1:4])
    if time.time() >= expires:
        return None
    return PendingLogin(user_id=user_id, issued_step=issued_step)


def forget(request: Request, response: Response) -> None:
    response.delete_cookie(_cookie_name(request), path="/", secure=is_secure(request))
