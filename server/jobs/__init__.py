"""Background jobs: the queue that carries "assess this message" from the web to the workers.

One interface, two backends picked from the settings, like the broker: in-process (embedded
default, the worker runs in the web process) and a Redis Stream with a consumer group
(scale-out, any number of `colloque worker` processes). The database stays the record: a patient
message not yet assessed is found by the workers' sweep whatever happened to its job.
"""

from __future__ import annotations

import logging

from server.jobs.base import Job, JobQueue
from server.jobs.memory import InProcessJobQueue

log = logging.getLogger("colloque.jobs")


def job_queue_for(redis_url: str | None, reclaim_after_seconds: float = 30.0) -> JobQueue:
    """The backend for these settings; Redis is imported only when configured."""
    if redis_url is None:
        return InProcessJobQueue()
    from server.jobs.redis_streams import RedisJobQueue

    return RedisJobQueue(redis_url, reclaim_after_seconds)


_queue: JobQueue = InProcessJobQueue()


def use_job_queue(queue: JobQueue) -> None:
    global _queue
    _queue = queue


def current_job_queue() -> JobQueue:
    return _queue


async def enqueue_triage(message_id: int) -> None:
    """Ask a worker to assess a committed patient message.

    Never fails the request that posted it: if the queue is unreachable the workers' sweep of
    unassessed messages picks the message up a few seconds later.
    """
    try:
        await _queue.enqueue(message_id)
    except Exception as error:
        log.warning("triage job not queued (%s): the sweep will assess the message", error)


__all__ = [
    "InProcessJobQueue",
    "Job",
    "JobQueue",
    "current_job_queue",
    "enqueue_triage",
    "job_queue_for",
    "use_job_queue",
]
