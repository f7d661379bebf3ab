"""`GET /events`: the patient's live stream, Server-Sent Events.

Events are written in sse-starlette's wire format (`ServerSentEvent`), by a small ASGI response
of our own rather than its `EventSourceResponse`: that one runs four tasks per stream (writer,
ping, disconnect listener, shutdown listener), about 30 KiB per idle connection. Here the
request's task waits for the client to leave, a writer task exists only while there is
something to write, and pings, session re-checks and shutdown come from the hub, once for all
streams.
"""

from __future__ import annotations

from functools import partial

from sse_starlette.sse import ServerSentEvent
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from server.live.connection import Close, Item, LiveConnection, Outgoing, Ping
from server.live.opening import BadCursor, open_connection, resume_point

# A browser reconnects after this many milliseconds when the stream ends for a restart or
# because it was too slow; it then sends Last-Event-ID and misses nothing.
RECONNECT_MS = 1000
# Proxies and phones drop silent connections; a comment every 15 s keeps them open.
PING_SECONDS = 15
LOGGED_OUT = '<span id="live-reset" hx-swap-oob="true" data-login hidden></span>'

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]


def encode(item: Outgoing) -> bytes:
    """One SSE event per stream event, each with its id (what Last-Event-ID resumes from); a
    fragment's own line breaks become several data lines."""
    event_id = None if item.event_id is None else str(item.event_id)
    return ServerSentEvent(item.html, event="update", id=event_id, sep="\n").encode()


_PING = ServerSentEvent(comment="ping", sep="\n").encode()


def _ending(close: Close) -> bytes:
    if close.reason == "logout":
        return encode(Outgoing(None, LOGGED_OUT))
    return ServerSentEvent(
        comment=f"closing: {close.reason}", retry=RECONNECT_MS, sep="\n"
    ).encode()


class EventStream:
    """The streaming response for one connection."""

    def __init__(self, connection: LiveConnection, after: int) -> None:
        self.connection = connection
        self.after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = self.connection
        async with scope["app"].state.hub.connected(connection, self.after):
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            connection.start(partial(_flush, send))
            try:
                # Only the ASGI server knows when the client leaves: it tells whoever waits on
                # `receive`. It also answers here once the writer has ended the response.
                while (await receive())["type"] != "http.disconnect":
                    pass
            finally:
                connection.stop()


async def _flush(send: Send, items: list[Item]) -> None:
    """Everything queued goes out in one write, still one SSE event per stream event."""
    close = items.pop() if isinstance(items[-1], Close) else None
    body = b"".join(
        encode(item) if isinstance(item, Outgoing) else _PING
        for item in items
        if isinstance(item, Outgoing | Ping)
    )
    if close is not None:
        body += _ending(close)
    await send({"type": "http.response.body", "body": body, "more_body": close is None})


async def events(request: Request) -> Response | EventStream:
    try:
        after = await resume_point(request)
    except BadCursor:
        return PlainTextResponse("Last-Event-ID and after must be event ids", status_code=400)
    connection = await open_connection(request, heartbeat=True)
    if connection is None:
        return PlainTextResponse("Login required", status_code=401)
    if request.method == "HEAD":
        # Headers only: a stream that never ends would wedge the client's connection.
        return Response(headers={k.decode(): v.decode() for k, v in _HEADERS})
    return EventStream(connection, after)
