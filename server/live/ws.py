"""`WS /ws`: staff's live connection. Fragments go out; messages and typing may come in."""

from __future__ import annotations

import json
import time
from functools import partial

from starlette.exceptions import HTTPException
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.actions import audit, messages
from server.actions.visibility import thread_for
from server.auth import current_user
from server.live.connection import Close, Item, LiveConnection, Outgoing
from server.live.opening import BadCursor, open_connection, resume_point
from server.models import User
from server.rules.refusal import Refused
from server.rules.validation import clean_text
from server.streams import announce_typing

# Close codes: the htmx WebSocket extension reconnects after 1012 and 1013, not after 1008.
POLICY = 1008
RESTARTING = 1012
TRY_LATER = 1013
_CLOSE_CODES = {"slow": TRY_LATER, "shutdown": RESTARTING, "logout": POLICY}

# Inbound frames per connection: a burst of 20, then 5 a second. Flooding one connection
# closes it without slowing anyone else.
_BURST = 20.0
_RATE = 5.0


def _same_origin(websocket: WebSocket) -> bool:
    """Cross-Site WebSocket Hijacking: browsers send the page's Origin, which must be ours."""
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    if not origin or not host:
        return False
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    return origin in (f"{scheme}://{host}", f"https://{host}")


async def _refuse(websocket: WebSocket, reason: str, user: User | None) -> None:
    """Turn the handshake away (403: it was never accepted) and audit the refusal."""
    await audit.record_refusal(user, "ws.denied", "route:/ws", {"reason": reason})
    await websocket.close(code=POLICY)


async def live_socket(websocket: WebSocket) -> None:
    if not _same_origin(websocket):
        await _refuse(websocket, "origin", await current_user(websocket))
        return
    try:
        after = await resume_point(websocket)
    except BadCursor:
        await _refuse(websocket, "cursor", await current_user(websocket))
        return
    connection = await open_connection(websocket)
    if connection is None or connection.user.role == "patient":
        reason = "session" if connection is None else "role"
        await _refuse(websocket, reason, connection.user if connection else None)
        return
    await websocket.accept()
    hub = websocket.app.state.hub
    async with hub.connected(connection, after):
        connection.start(partial(_flush, websocket, connection))
        try:
            # This task reads: it must always be waiting, to see the client leave and to apply
            # the inbound rate limit. Writing happens in a task of the connection's own, only
            # while there is something to write.
            await _receive(websocket, connection)
        finally:
            connection.stop()


async def _flush(websocket: WebSocket, connection: LiveConnection, items: list[Item]) -> None:
    """Whatever was queued goes out as one frame: each event's fragment is complete (out-of-band
    swaps ending with its cursor), so the page applies them in order as if sent one by one."""
    close = items.pop() if isinstance(items[-1], Close) else None
    text = "".join(item.html for item in items if isinstance(item, Outgoing))
    try:
        if text:
            await websocket.send_text(text)
        if close is not None:
            # The close frame also ends the reading loop: the server reports it as a disconnect.
            await websocket.close(code=_CLOSE_CODES.get(close.reason, TRY_LATER))
    except (WebSocketDisconnect, RuntimeError, OSError):
        # The client left while we were writing (Starlette raises RuntimeError once the socket
        # is closed): the reading loop sees it too and ends the stream.
        connection.stop()


async def _receive(websocket: WebSocket, connection: LiveConnection) -> None:
    allowance, stamp = _BURST, time.monotonic()
    try:
        while True:
            text = await websocket.receive_text()
            now = time.monotonic()
            allowance = min(_BURST, allowance + (now - stamp) * _RATE)
            stamp = now
            if allowance < 1:
                connection.close("slow")
                return
            allowance -= 1
            await _handle_frame(connection, text)
    except (WebSocketDisconnect, RuntimeError):
        return


async def _handle_frame(connection: LiveConnection, text: str) -> None:
    """`{"type": "message", "thread_id": N, "body": "..."}` or `{"type": "typing", ...}`.

    Bad frames are ignored: the page uses HTTP forms for anything that needs an answer.
    """
    try:
        frame = json.loads(text)
        thread_id = int(frame["thread_id"])
    except (ValueError, KeyError, TypeError):
        return
    try:
        thread = await thread_for(connection.user, thread_id)
        if frame.get("type") == "message":
            await messages.post_message(connection.user, thread, clean_text(frame.get("body")))
        elif frame.get("type") == "typing":
            await announce_typing(thread, connection.user)
    except (HTTPException, Refused):
        return
