"""In-process backend: one process, no network; the embedded default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from server.broker.base import RESYNC, Resync

# A listener is the process's own hub, which drains promptly; if it ever falls this far behind,
# dropping and resyncing from the database beats unbounded memory.
_LISTENER_BUFFER = 10_000


class InProcessBroker:
    def __init__(self) -> None:
        self._listeners: set[asyncio.Queue[bytes | Resync]] = set()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        self._listeners.clear()

    async def publish(self, payload: bytes) -> None:
        for queue in self._listeners:
            try:
                queue.put_nowait(payload)
            except asyncio.QueueFull:
                _replace_backlog_with_resync(queue)

    async def listen(self) -> AsyncIterator[bytes | Resync]:
        queue: asyncio.Queue[bytes | Resync] = asyncio.Queue(_LISTENER_BUFFER)
        self._listeners.add(queue)
        try:
            yield RESYNC
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)


def _replace_backlog_with_resync(queue: asyncio.Queue[bytes | Resync]) -> None:
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(RESYNC)
