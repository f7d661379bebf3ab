"""`WS /ws`: staff's live connection. Fragments go out; messages and typing may come in."""

from __future__ import annotations

import json
import time

import anyio
from starlette.exceptions import HTTPException
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.actions import messages
from server.actions.visibility import thread_for
from server.live.connection import Close, LiveConnection
from server.live.opening import BadCursor, open_connection, resume_point
from server.live.session_check import next_check_delay, session_alive
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


async def live_socket(websocket: WebSocket) -> None:
    if not _same_origin(websocket):
        await websocket.close(code=POLICY)
        return
    try:
        after = await resume_point(websocket)
    except BadCursor:
        await websocket.close(code=POLICY)
        return
    connection = await open_connection(websocket)
    if connection is None or connection.user.role == "patient":
        await websocket.close(code=POLICY)
        return
    await websocket.accept()
    hub = websocket.app.state.hub
    async with hub.connected(connection, after), anyio.create_task_group() as tasks:

        async def send_then_stop() -> None:
            await _send(websocket, connection)
            tasks.cancel_scope.cancel()

        async def receive_then_stop() -> None:
            await _receive(websocket, connection)
            tasks.cancel_scope.cancel()

        tasks.start_soon(send_then_stop)
        tasks.start_soon(receive_then_stop)


async def _send(websocket: WebSocket, connection: LiveConnection) -> None:
    try:
        await _send_until_closed(websocket, connection)
    except (WebSocketDisconnect, RuntimeError):
        # The client left while we were writing (Starlette raises RuntimeError once the socket
        # is closed): nothing to clean up beyond leaving the hub, which the caller does.
        return


async def _send_until_closed(websocket: WebSocket, connection: LiveConnection) -> None:
    check_at = anyio.current_time() + next_check_delay()
    while True:
        with anyio.move_on_after(max(0.0, check_at - anyio.current_time())):
            item = await connection.next()
            if isinstance(item, Close):
                await websocket.close(code=_CLOSE_CODES.get(item.reason, TRY_LATER))
                return
            await websocket.send_text(item.html)
            continue
        if not await session_alive(connection.session_id):
            await websocket.close(code=POLICY)
            return
        check_at = anyio.current_time() + next_check_delay()


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
