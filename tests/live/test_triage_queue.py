"""The triage job queue on both backends, against a real redis-server for the Redis one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from server.jobs import InProcessJobQueue, Job, JobQueue, enqueue_triage, use_job_queue
from server.jobs.redis_streams import GROUP, STREAM, RedisJobQueue

from .support import RedisProcess

pytestmark = pytest.mark.anyio


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["inprocess", "redis"])
async def queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobQueue]:
    if request.param == "inprocess":
        yield InProcessJobQueue()
        return
    server = RedisProcess(tmp_path)
    server.start()
    redis_queue = RedisJobQueue(server.url)
    try:
        yield redis_queue
    finally:
        await redis_queue.close()
        server.stop()


async def _take(queue: JobQueue, count: int) -> list[Job]:
    taken: list[Job] = []
    with anyio.fail_after(5):
        async for job in queue.take():
            taken.append(job)
            if len(taken) == count:
                break
    return taken


async def test_jobs_are_taken_in_order_of_enqueueing(queue: JobQueue) -> None:
    for message_id in (11, 12, 13):
        await queue.enqueue(message_id)
    jobs = await _take(queue, 3)
    assert [job.message_id for job in jobs] == [11, 12, 13]
    for job in jobs:
        await queue.ack(job)


async def test_jobs_queued_before_any_worker_started_are_taken(
    redis_server: RedisProcess,
) -> None:
    web = RedisJobQueue(redis_server.url)
    await web.enqueue(41)
    worker = RedisJobQueue(redis_server.url)
    try:
        assert [job.message_id for job in await _take(worker, 1)] == [41]
    finally:
        await web.close()
        await worker.close()


async def test_a_job_taken_by_a_dead_worker_is_reclaimed_and_acked_once(
    redis_server: RedisProcess,
) -> None:
    crashed = RedisJobQueue(redis_server.url, reclaim_after_seconds=0.3)
    await crashed.enqueue(77)
    [lost] = await _take(crashed, 1)
    await crashed.close()  # it never acknowledges: the job stays pending under its name

    survivor = RedisJobQueue(redis_server.url, reclaim_after_seconds=0.3)
    started = time.monotonic()
    [reclaimed] = await _take(survivor, 1)
    assert reclaimed.message_id == 77
    assert reclaimed.receipt == lost.receipt
    assert time.monotonic() - started >= 0.25  # not before it has been idle long enough
    await survivor.ack(reclaimed)
    client = Redis.from_url(redis_server.url)
    try:
        pending = await client.xpending(STREAM, GROUP)
        assert pending["pending"] == 0
    finally:
        await client.aclose()
        await survivor.close()


async def test_enqueueing_with_redis_down_neither_hangs_nor_fails_the_post(
    redis_server: RedisProcess,
) -> None:
    queue = RedisJobQueue(redis_server.url)
    redis_server.stop()
    use_job_queue(queue)
    try:
        with anyio.fail_after(3):
            await enqueue_triage(5)  # logged; the workers' sweep assesses the message later
        with pytest.raises(Exception):  # noqa: B017 - any Redis error will do
            await queue.enqueue(5)
    finally:
        use_job_queue(InProcessJobQueue())
        await queue.close()
