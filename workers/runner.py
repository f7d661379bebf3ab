"""Runs every background job until cancelled."""

from __future__ import annotations

import logging

import anyio

from server.jobs import current_job_queue
from server.sessions import purge_expired_sessions
from workers.triage.worker import run_triage

log = logging.getLogger("colloque.workers")

# Expired sessions are already refused when used; purging them is housekeeping, so every few
# minutes is enough and keeps the table small.
SESSION_PURGE_INTERVAL_SECONDS = 300


async def purge_sessions_forever() -> None:
    while True:
        try:
            removed = await purge_expired_sessions()
            if removed:
                log.info("purged %d expired sessions", removed)
        except Exception:
            # A database hiccup must not kill the worker: try again at the next interval.
            log.exception("session purge failed")
        await anyio.sleep(SESSION_PURGE_INTERVAL_SECONDS)


async def run_workers() -> None:
    """Every job, against the job queue this process was given (`server.jobs.use_job_queue`)."""
    async with anyio.create_task_group() as jobs:
        jobs.start_soon(purge_sessions_forever)
        jobs.start_soon(run_triage, current_job_queue())
