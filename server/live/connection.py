"""One open stream (SSE or WebSocket) and its bounded send queue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from server.models import User

# Fragments waiting to be written to one client (a few KiB each). A client that lets this many
# pile up is too slow: it is disconnected and catches up from the database when it reconnects,
# instead of holding memory or slowing the other clients down.
SEND_BUFFER = 64

# Stand-in for the CSRF token in fragments rendered once for many connections; each connection
# puts its own session's token in its copy.
CSRF_PLACEHOLDER = "__colloque_csrf__"


@dataclass(frozen=True)
class Outgoing:
    """A fragment to send; `event_id` is None for ephemeral updates (typing)."""

    event_id: int | None
    html: str


@dataclass(frozen=True)
class Close:
    """Ends the stream; `reason` tells the client whether and when to come back."""

    reason: str


@dataclass(eq=False)
class LiveConnection:
    user: User
    session_id: int
    locale: str
    csrf_token: str
    #: Last event id queued for this client; anything at or before it is not sent again.
    last_id: int = 0
    #: Unbounded as a queue, bounded in use: at most the replay (streams.MAX_REPLAY) plus
    #: SEND_BUFFER live items plus the final Close.
    queue: asyncio.Queue[Outgoing | Close] = field(default_factory=asyncio.Queue)
    #: While the connection replays from the database, live events wait here in order.
    _held: list[Outgoing] | None = field(default_factory=list)
    #: Replayed items still queued: the catch-up the client asked for is not a sign of slowness.
    _backlog: int = 0
    closed: bool = False

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

    async def next(self) -> Outgoing | Close:
        """The next thing to write to the client."""
        item = await self.queue.get()
        if self._backlog and isinstance(item, Outgoing):
            self._backlog -= 1
        return item

    def _put(self, item: Outgoing, *, replay: bool = False) -> None:
        if self.closed:
            return
        if not replay and self.queue.qsize() - self._backlog >= SEND_BUFFER:
            self.close("slow")
            return
        if replay:
            self._backlog += 1
        if item.event_id is not None:
            self.last_id = item.event_id
        if CSRF_PLACEHOLDER in item.html:
            item = Outgoing(item.event_id, item.html.replace(CSRF_PLACEHOLDER, self.csrf_token))
        self.queue.put_nowait(item)

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
        while not self.queue.empty():
            self.queue.get_nowait()
        self._backlog = 0
        self.queue.put_nowait(Close(reason))
