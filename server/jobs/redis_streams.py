"""Redis Stream backend: one stream, one consumer group, any number of worker processes.

Each job is an entry read by exactly one worker (XREADGROUP) and stays in the group's pending
list until that worker acknowledges it, which it does only after the result is stored. Entries
left pending by a worker that died are claimed by the others (XAUTOCLAIM) once idle long enough.
Redis keeps nothing on disk here: what a Redis restart loses, the workers' database sweep finds.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from server.jobs.base import Job

log = logging.getLogger("colloque.jobs")

STREAM = "colloque:triage"
GROUP = "triage"
# Enqueueing happens on the request path after commit: a dead Redis must not hang the POST.
_ENQUEUE_TIMEOUT_SECONDS = 0.5
# Bounds memory; an entry trimmed unread is still found by the database sweep.
_MAX_ENTRIES = 100_000
# How long one read waits for new jobs before looking for abandoned ones again.
_BLOCK_MILLISECONDS = 1000
_BATCH = 32
_RETRY_SECONDS = 0.5


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


def _jobs(entries: list[Any]) -> list[Job]:
    jobs = []
    for entry_id, fields in entries:
        if not fields:
            continue
        raw = fields.get(b"message_id")
        if raw is not None and raw.isdigit():
            jobs.append(Job(int(raw), entry_id.decode()))
    return jobs


class RedisJobQueue:
    def __init__(self, url: str, reclaim_after_seconds: float = 30.0) -> None:
        self._url = url
        self._reclaim_ms = int(reclaim_after_seconds * 1000)
        self._consumer = _consumer_name()
        self._producer = Redis.from_url(
            url,
            socket_timeout=_ENQUEUE_TIMEOUT_SECONDS,
            socket_connect_timeout=_ENQUEUE_TIMEOUT_SECONDS,
        )
        self._reader: Redis | None = None

    async def enqueue(self, message_id: int) -> None:
        await self._producer.xadd(
            STREAM, {"message_id": message_id}, maxlen=_MAX_ENTRIES, approximate=True
        )

    async def take(self) -> AsyncIterator[Job]:
        self._reader = Redis.from_url(self._url, socket_connect_timeout=2, socket_timeout=10)
        last_reclaim = 0.0
        group_ready = False
        while True:
            try:
                if not group_ready:
                    await self._ensure_group()
                    group_ready = True
                if time.monotonic() - last_reclaim >= self._reclaim_ms / 2000:
                    last_reclaim = time.monotonic()
                    for job in await self._reclaim():
                        yield job
                for job in await self._read_new():
                    yield job
            except RedisError as error:
                # Redis restarting (and forgetting the group): try again shortly; the sweep
                # covers the jobs it forgot.
                log.warning("triage queue unavailable (%s); retrying", error)
                group_ready = False
                await anyio.sleep(_RETRY_SECONDS)

    async def _ensure_group(self) -> None:
        assert self._reader is not None
        try:
            # From the stream's start: jobs queued while no worker ran are taken too.
            await self._reader.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def _reclaim(self) -> list[Job]:
        assert self._reader is not None
        jobs: list[Job] = []
        start = "0-0"
        while True:
            answer = await self._reader.xautoclaim(
                STREAM, GROUP, self._consumer, self._reclaim_ms, start_id=start, count=_BATCH
            )
            start, entries = answer[0], answer[1]
            claimed = _jobs(entries)
            if claimed:
                log.info("reclaimed %d triage jobs left by another worker", len(claimed))
            jobs.extend(claimed)
            if start in (b"0-0", "0-0"):
                return jobs

    async def _read_new(self) -> list[Job]:
        assert self._reader is not None
        answer = await self._reader.xreadgroup(
            GROUP, self._consumer, {STREAM: ">"}, count=_BATCH, block=_BLOCK_MILLISECONDS
        )
        return [job for _stream, entries in answer or [] for job in _jobs(entries)]

    async def ack(self, job: Job) -> None:
        assert self._reader is not None
        await self._reader.xack(STREAM, GROUP, job.receipt)

    async def close(self) -> None:
        await self._producer.aclose()
        if self._reader is not None:
            await self._reader.aclose()
