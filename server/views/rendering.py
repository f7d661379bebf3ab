"""Rendering pages and fragments in the visitor's language."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse

from server.auth import csrf_token, remember_visitor
from server.i18n import LOCALES, gettext, pick_locale, translations
from server.settings import WEB_DIR
from server.translatable import N_

LOCALE_COOKIE = "colloque_lang"

CATEGORY_LABELS = {
    "question": N_("Health question"),
    "renewal": N_("Prescription renewal"),
    "admin": N_("Administrative request"),
    "results": N_("Test results"),
    "other": N_("Other"),
}
STATUS_LABELS = {
    "pending": N_("Awaiting acceptance"),
    "open": N_("Open"),
    "declined": N_("Declined"),
    "closed": N_("Closed"),
}


def _waiting(locale: str, delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return gettext(locale, "%(n)d min") % {"n": minutes}
    if minutes < 48 * 60:
        return gettext(locale, "%(n)d h") % {"n": minutes // 60}
    return gettext(locale, "%(n)d days") % {"n": minutes // (24 * 60)}


def _date(value: datetime) -> str:
    return (
        value.strftime("%d/%m/%Y %H:%M")
        if isinstance(value, datetime)
        else value.strftime("%d/%m/%Y")
    )


@cache
def environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(WEB_DIR / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["waiting"] = lambda delta: _waiting(locale, delta)
    env.filters["date"] = _date
    env.globals["locale"] = locale
    env.globals["locales"] = LOCALES
    env.globals["category_labels"] = CATEGORY_LABELS
    env.globals["status_labels"] = STATUS_LABELS
    return env


def request_locale(request: HTTPConnection) -> str:
    session = request.state._state.get("session")
    user_locale = session.user.locale if session else None
    return pick_locale(user_locale, request.cookies.get(LOCALE_COOKIE))


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """Render `template` for this visitor. Every answer is private: pages carry health data."""
    locale = request_locale(request)
    session = request.state._state.get("session")
    page = environment(locale).get_template(template)
    html = page.render(
        request=request,
        user=session.user if session else None,
        csrf_token=csrf_token(request),
        live_cursor=request.state._state.get("live_cursor"),
        **(context or {}),
    )
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    remember_visitor(request, response)
    return response


def translate(request: Request, message: str) -> str:
    return gettext(request_locale(request), message)
