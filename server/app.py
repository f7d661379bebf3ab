"""create_app(): routes, error pages and the lifespan that opens the database and Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from server import db, streams
from server.body_limit import BodyLimit
from server.broker import broker_for
from server.headers import SecurityHeaders
from server.jobs import job_queue_for, use_job_queue
from server.live import sse, ws
from server.live.hub import Hub
from server.settings import WEB_DIR, Settings, load_settings
from server.translatable import N_
from server.views import (
    admin,
    auth,
    health,
    password,
    patient,
    privacy,
    second_factor,
    staff,
    threads,
    triage,
)
from server.views.rendering import is_htmx, render, translate
from workers.runner import run_workers

_REASONS = {
    400: N_("The request is not valid."),
    401: N_("Please log in."),
    403: N_("You are not allowed to do this."),
    404: N_("This page does not exist or is not yours to see."),
    405: N_("This action is not available here."),
    413: N_("What you sent is too large."),
    429: N_("Too many requests. Please wait a moment."),
}
_UNKNOWN_ERROR = N_("Something went wrong.")


async def _http_error(request: Request, exc: Exception) -> Response:
    """An HTML page for people, a fragment for htmx, a short text reason for programs."""
    assert isinstance(exc, HTTPException)
    if is_htmx(request):
        if exc.status_code == 401:
            # The session ended (timeout, logout elsewhere): send the whole page to the login.
            return Response(status_code=204, headers={"HX-Redirect": "/login"})
        message = translate(request, _REASONS.get(exc.status_code, _UNKNOWN_ERROR))
        return render(request, "partials/form_error.html", {"error": message}, exc.status_code)
    if "text/html" in request.headers.get("accept", ""):
        message = _REASONS.get(exc.status_code, _UNKNOWN_ERROR)
        response = render(request, "pages/error.html", {"message": message}, exc.status_code)
        response.headers.update(exc.headers or {})
        return response
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def _routes() -> list[Route | Mount | WebSocketRoute]:
    thread = "/threads/{thread_id:int}"
    return [
        Route("/", patient.home),
        Route("/login", auth.login_page, methods=["GET"]),
        Route("/login", auth.login, methods=["POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        # Forgotten password: an emailed one-time link.
        Route("/password/forgot", password.forgot_page, methods=["GET"]),
        Route("/password/forgot", password.forgot, methods=["POST"]),
        Route("/password/reset/{token:str}", password.reset_page, methods=["GET"]),
        Route("/password/reset/{token:str}", password.reset, methods=["POST"]),
        # Two-step verification and the account page.
        Route("/login/second-factor", second_factor.login_code_page, methods=["GET"]),
        Route("/login/second-factor", second_factor.login_code, methods=["POST"]),
        Route("/account", second_factor.account_page, methods=["GET"]),
        Route("/account/second-factor", second_factor.setup_page, methods=["GET"]),
        Route("/account/second-factor/start", second_factor.start, methods=["POST"]),
        Route("/account/second-factor/confirm", second_factor.confirm, methods=["POST"]),
        Route("/account/second-factor/recovery-codes", second_factor.renew_codes, methods=["POST"]),
        Route("/account/second-factor/disable", second_factor.disable, methods=["POST"]),
        Route("/account/second-factor/hint", second_factor.dismiss_suggestion, methods=["POST"]),
        Route("/account/logout-everywhere", second_factor.logout_everywhere, methods=["POST"]),
        # A patient's data (GDPR): a copy, or closing the account.
        Route("/account/export", privacy.export_page, methods=["GET"]),
        Route("/account/export", privacy.export, methods=["POST"]),
        Route("/account/close", privacy.close_page, methods=["GET"]),
        Route("/account/close", privacy.close, methods=["POST"]),
        # The practice administrator: the audit trail.
        Route("/admin", admin.home, methods=["GET"]),
        Route("/admin/audit.csv", admin.audit_csv, methods=["GET"]),
        Route("/language", auth.choose_language, methods=["POST"]),
        Route("/threads/new", patient.new_request, methods=["GET"]),
        Route("/threads", patient.create_request, methods=["POST"]),
        Route(thread, threads.show, methods=["GET"]),
        Route(f"{thread}/messages", threads.post_message, methods=["POST"]),
        Route(f"{thread}/accept", threads.accept, methods=["POST"]),
        Route(f"{thread}/decline", threads.decline, methods=["POST"]),
        Route(f"{thread}/close", threads.close, methods=["POST"]),
        Route(f"{thread}/assign", threads.assign, methods=["POST"]),
        Route(f"{thread}/typing", threads.typing, methods=["POST"]),
        Route("/events", sse.events, methods=["GET"]),
        WebSocketRoute("/ws", ws.live_socket),
        Route("/inbox", staff.inbox, methods=["GET"]),
        Route("/queue", staff.queue, methods=["GET"]),
        Route("/settings", staff.settings_page, methods=["GET"]),
        Route("/settings", staff.save_settings, methods=["POST"]),
        Route("/settings/second-factor", second_factor.save_patient_requirement, methods=["POST"]),
        Route("/triage/preview", triage.preview, methods=["POST"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static"),
    ]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open_database(settings)
        app.state.redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        broker = broker_for(settings.redis_url)
        await broker.connect()
        streams.use_broker(broker, settings.secret_key)
        job_queue = job_queue_for(settings.redis_url, settings.triage_reclaim_seconds)
        use_job_queue(job_queue)
        app.state.hub = Hub(broker)
        try:
            async with anyio.create_task_group() as background:
                background.start_soon(app.state.hub.run)
                if settings.embedded:
                    # Embedded default: one process runs everything, background work included.
                    background.start_soon(run_workers)
                yield
                app.state.hub.close_all("shutdown")
                background.cancel_scope.cancel()
        finally:
            await job_queue.close()
            await broker.disconnect()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            await db.close_database()

    app = Starlette(
        routes=_routes(),
        lifespan=lifespan,
        middleware=[
            Middleware(SecurityHeaders, https=settings.production),
            Middleware(BodyLimit),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.settings = settings
    app.state.redis = None
    app.state.hub = None
    return app
