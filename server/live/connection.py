"""One open stream (SSE or WebSocket) and its bounded send queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.models import User

# Fragments waiting to be written to one client (a few KiB each). A client that lets this many
# pile up is too slow: it is disconnected and catches up from the database when it reconnects,
# instead of holding memory or slowing the other clients down.
SEND_BUFFER = 64

# Stand-in for the CSRF token in fragments rendered once for many connections; each connection
# puts its own session's token in its copy.
CSRF_PLACEHOLDER = "__colloque_csrf__"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A fragment to send; `event_id` is None for ephemeral updates (typing)."""

    event_id: int | None
    html: str


@dataclass(frozen=True, slots=True)
class Close:
    """Ends the stream; `reason` tells the client whether and when to come back ("gone": the
    client already left, nothing is written)."""

    reason: str


class Ping:
    """A keep-alive for streams that need one (SSE); never counted against the send buffer."""


PING = Ping()

Item = Outgoing | Close | Ping
#: Writes a batch of items to the client (one WebSocket frame, or one write of SSE events).
Flush = Callable[[list[Item]], Awaitable[None]]


class LiveConnection:
    """What the hub knows of one stream, and the items waiting to be written to it.

    Items are written by a task that exists only while there is something to write: an idle
    connection costs its ASGI task (which waits for the client to leave) and a few hundred
    bytes here, not a writer task, a reader task and an asyncio.Queue's three deques. A burst
    queued while the writer was away goes out in one write.
    """

    __slots__ = (
        "_backlog",
        "_flush",
        "_held",
        "_items",
        "_writer",
        "closed",
        "csrf_token",
        "heartbeat",
        "last_id",
        "locale",
        "session_id",
        "user",
        "written_at",
    )

    def __init__(
        self, user: User, session_id: int, locale: str, csrf_token: str, *, heartbeat: bool = False
    ) -> None:
        self.user = user
        self.session_id = session_id
        self.locale = locale
        self.csrf_token = csrf_token
        #: The hub pings it after PING_SECONDS without a write (SSE: proxies drop silent
        #: connections).
        self.heartbeat = heartbeat
        #: time.monotonic() of the last write, or of the opening.
        self.written_at = time.monotonic()
        #: Last event id queued for this client; anything at or before it is not sent again.
        self.last_id = 0
        self.closed = False
        #: Bounded in use: at most the replay (streams.MAX_REPLAY) plus SEND_BUFFER live items
        #: plus a ping and the final Close.
        self._items: list[Item] = []
        #: While the connection replays from the database, live events wait here in order.
        self._held: list[Outgoing] | None = []
        #: Replayed items still queued: the catch-up the client asked for is not a sign of slowness.
        self._backlog = 0
        self._flush: Flush | None = None
        self._writer: asyncio.Task[None] | None = None

    def start(self, flush: Flush) -> None:
        """Begin writing, with `flush`, what is queued and what comes next."""
        self._flush = flush
        self._wake()

    def stop(self) -> None:
        """The stream ended (the client left, or the endpoint returned): write nothing more."""
        self.closed = True
        self._flush = None
        self._items = []
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()

    def offer(self, item: Outgoing) -> None:
        """Queue a fragment unless already sent; disconnect a client that fell too far behind."""
        if self.closed:
            return
        if item.event_id is not None and item.event_id <= self.last_id:
            return
        if self._held is not None:
            self._held.append(item)
            return
        self._put(item)

    def ping(self) -> None:
        if not self.closed and PING not in self._items:
            self._items.append(PING)
            self._wake()

    def _wake(self) -> None:
        if self._writer is None and self._flush is not None and self._items:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._items and self._flush is not None:
                # Up to SEND_BUFFER items per write: a long replay goes out in several.
                items = self._items
                if len(items) > SEND_BUFFER:
                    items, self._items = items[:SEND_BUFFER], items[SEND_BUFFER:]
                else:
                    self._items = []
                # Replayed items are queued first, so the first ones taken are the backlog.
                self._backlog = max(0, self._backlog - len(items))
                await self._flush(items)
                self.written_at = time.monotonic()
        finally:
            self._writer = None

    def _put(self, item: Outgoing, *, replay: bool = False) -> None:
        if self.closed:
            return
        if not replay and len(self._items) - self._backlog >= SEND_BUFFER:
            self.close("slow")
            return
        if replay:
            self._backlog += 1
        if item.event_id is not None:
            self.last_id = item.event_id
        if CSRF_PLACEHOLDER in item.html:
            item = Outgoing(item.event_id, item.html.replace(CSRF_PLACEHOLDER, self.csrf_token))
        self._items.append(item)
        self._wake()

    def replayed(self, items: list[Outgoing]) -> None:
        """Queue the catch-up read from the database, then what arrived live meanwhile."""
        held, self._held = self._held or [], None
        for item in items:
            self._put(item, replay=True)
        for item in held:
            if item.event_id is None or item.event_id > self.last_id:
                self._put(item)

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        # What is still queued is dropped: the client resumes from the last event it applied,
        # so it loses nothing, and the memory is freed now.
        self._items = [Close(reason)]
        self._backlog = 0
        self._wake()
