"""How `colloque serve` runs the application: uvicorn, with the live endpoints reached directly.

A live stream's task keeps its whole call stack for as long as the client stays connected:
through Starlette's middleware and router that is about a dozen coroutine frames and closures,
some 4 KiB per idle connection. `/ws` and `/events` are therefore dispatched here, before the
Starlette application (which still serves them too, for in-process test clients); the security
headers, the one middleware that matters to them, are applied here as well.
"""

from __future__ import annotations

import gc
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from server.app import create_app as create_starlette_app
from server.headers import SecurityHeaders
from server.live import sse, ws
from server.live.hub import close_every_stream


class LiveRoutes:
    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.events = SecurityHeaders(self._events, https=app.state.settings.production)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] == "websocket" and path == "/ws":
            scope["app"] = self.app
            await ws.live_socket(WebSocket(scope, receive, send))
        elif scope["type"] == "http" and path == "/events" and scope["method"] in ("GET", "HEAD"):
            scope["app"] = self.app
            await self.events(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _events(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await sse.events(Request(scope, receive, send))
        await response(scope, receive, send)


def create_app() -> LiveRoutes:
    return LiveRoutes(create_starlette_app())


class LiveServer(uvicorn.Server):
    """uvicorn, with two changes for long-lived streams.

    - Once started, everything loaded so far (modules, templates, the ORM's metadata) is moved
      out of the garbage collector's sight, so that a full collection walks only what requests
      and streams allocate. With the 70,000 long-lived objects of a started server in view, each
      full collection stalled everything for 13–18 ms on a 2-core machine.
    - On shutdown uvicorn waits for open requests to finish, and a live stream never does: each
      is closed with its reconnect hint first (WebSockets get 1012 from uvicorn itself).
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        gc.collect()
        gc.freeze()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        close_every_stream("shutdown")
        await super().shutdown(sockets)
