"""What a job queue offers the workers: at-least-once delivery, acknowledged after the work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Job:
    """One message to assess; `receipt` is what `ack` needs (a stream entry id on Redis)."""

    message_id: int
    receipt: str


class JobQueue(Protocol):
    async def enqueue(self, message_id: int) -> None: ...

    def take(self) -> AsyncIterator[Job]:
        """Jobs for this consumer, including those a crashed consumer took and never acked."""
        ...

    async def ack(self, job: Job) -> None:
        """Call only once the job's result is stored: an unacked job is handed out again."""
        ...

    async def close(self) -> None: ...
