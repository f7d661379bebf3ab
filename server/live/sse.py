"""`GET /events`: the patient's live stream, Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from server.live.connection import Close, LiveConnection
from server.live.opening import BadCursor, open_connection, resume_point
from server.live.session_check import next_check_delay, session_alive

# A browser reconnects after this many milliseconds when the stream ends for a restart or
# because it was too slow; it then sends Last-Event-ID and misses nothing.
RECONNECT_MS = 1000
# Proxies and phones drop silent connections; a comment every 15 s keeps them open and lets
# the server notice a dead client.
PING_SECONDS = 15
LOGGED_OUT = '<span id="live-reset" hx-swap-oob="true" data-login hidden></span>'


async def _events(
    request: Request, connection: LiveConnection, after: int
) -> AsyncIterator[ServerSentEvent]:
    hub = request.app.state.hub
    async with hub.connected(connection, after):
        check_at = anyio.current_time() + next_check_delay()
        while True:
            with anyio.move_on_after(max(0.0, check_at - anyio.current_time())):
                item = await connection.next()
                if isinstance(item, Close):
                    if item.reason == "logout":
                        yield ServerSentEvent(data=LOGGED_OUT, event="update")
                        return
                    yield ServerSentEvent(comment=f"closing: {item.reason}", retry=RECONNECT_MS)
                    return
                yield ServerSentEvent(
                    data=item.html,
                    event="update",
                    id=str(item.event_id) if item.event_id is not None else None,
                )
                continue
            if not await session_alive(connection.session_id):
                yield ServerSentEvent(data=LOGGED_OUT, event="update")
                return
            check_at = anyio.current_time() + next_check_delay()


async def events(request: Request) -> Response:
    try:
        after = await resume_point(request)
    except BadCursor:
        return PlainTextResponse("Last-Event-ID and after must be event ids", status_code=400)
    connection = await open_connection(request)
    if connection is None:
        return PlainTextResponse("Login required", status_code=401)
    return EventSourceResponse(
        _events(request, connection, after),
        ping=PING_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
