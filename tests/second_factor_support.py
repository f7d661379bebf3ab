"""Helpers for the two-step verification tests: an authenticator app, and logging in with it."""

from __future__ import annotations

import re
import time

import httpx
import pyotp
from core_support import PASSWORD, anonymous_token, csrf_from

from server.models import Practice, User
from server.rules.second_factor import time_step

PENDING_COOKIE = "colloque_pending_login"
SESSION_COOKIE = "colloque_session"
_RECOVERY = re.compile(r"<code data-recovery-code>([a-z0-9-]+)</code>")
_SECRET = re.compile(r"<code data-secret>([A-Z2-7 ]+)</code>")


async def app_code(email: str, *, later: int = 0) -> str:
    """What the user's authenticator app shows now (or `later` steps from now)."""
    user = await User.get(email=email)
    assert user.totp_secret is not None
    return pyotp.TOTP(user.totp_secret).generate_otp(time_step(time.time()) + later)


async def unused_code(email: str) -> str:
    """A code the server has not seen yet: the next step after the last one accepted, as if
    the user had waited for their app to show a new code (no test sleeps 30 seconds)."""
    user = await User.get(email=email)
    now = time_step(time.time())
    if user.totp_last_step >= now:
        user.totp_last_step = now - 2
        await user.save(update_fields=["totp_last_step"])
    return await app_code(email)


async def require_for_everyone(practice_name: str) -> None:
    await Practice.filter(name=practice_name).update(
        require_staff_second_factor=True, require_patient_second_factor=True
    )


async def enrol(client: httpx.AsyncClient, email: str, csrf: str) -> list[str]:
    """Set two-step verification up through the account pages; returns the recovery codes."""
    started = await client.post("/account/second-factor/start", data={"csrf_token": csrf})
    assert started.status_code == 303, started.text
    setup = await client.get("/account/second-factor")
    assert setup.status_code == 200
    shown = _SECRET.search(setup.text)
    assert shown is not None, "the set-up page shows the key"
    user = await User.get(email=email)
    assert shown[1].replace(" ", "") == user.totp_secret
    confirmed = await client.post(
        "/account/second-factor/confirm",
        data={"code": await app_code(email), "csrf_token": csrf_from(setup.text)},
    )
    assert confirmed.status_code == 200, confirmed.text
    return recovery_codes_in(confirmed.text)


def recovery_codes_in(html: str) -> list[str]:
    return _RECOVERY.findall(html)


async def password_step(client: httpx.AsyncClient, email: str) -> httpx.Response:
    token = await anonymous_token(client)
    return await client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )


async def code_step(client: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await client.get("/login/second-factor")
    assert page.status_code == 200, page.status_code
    return await client.post(
        "/login/second-factor", data={"code": code, "csrf_token": csrf_from(page.text)}
    )


async def login_with_code(client: httpx.AsyncClient, email: str, code: str) -> httpx.Response:
    """Password, then code: the answer to the code step."""
    first = await password_step(client, email)
    assert first.status_code == 303 and first.headers["location"] == "/login/second-factor"
    return await code_step(client, code)
