"""In-process job queue for the embedded default, where the worker runs in the web process.

A job lost with the process (a crash between commit and assessment) is found again by the
workers' sweep of unassessed messages at the next start, so no durability is needed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from server.jobs.base import Job


class InProcessJobQueue:
    def __init__(self) -> None:
        self._jobs: asyncio.Queue[int] = asyncio.Queue()

    async def enqueue(self, message_id: int) -> None:
        self._jobs.put_nowait(message_id)

    async def take(self) -> AsyncIterator[Job]:
        while True:
            message_id = await self._jobs.get()
            yield Job(message_id, str(message_id))

    async def ack(self, job: Job) -> None:
        return None

    async def close(self) -> None:
        return None
