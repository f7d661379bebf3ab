"""Runs every background job until cancelled."""

from __future__ import annotations

import logging

import anyio

from server.actions.login_throttle import purge_forgotten
from server.jobs import current_job_queue
from server.sessions import purge_expired_sessions
from workers.triage.worker import run_triage

log = logging.getLogger("colloque.workers")

# Expired sessions and forgotten login-failure counters are already ignored when read; purging
# them is housekeeping, so every few minutes is enough and keeps the tables small.
HOUSEKEEPING_INTERVAL_SECONDS = 300


async def housekeeping_forever() -> None:
    while True:
        try:
            sessions = await purge_expired_sessions()
            counters = await purge_forgotten()
            if sessions or counters:
                log.info("purged %d expired sessions, %d login counters", sessions, counters)
        except Exception:
            # A database hiccup must not kill the worker: try again at the next interval.
            log.exception("housekeeping failed")
        await anyio.sleep(HOUSEKEEPING_INTERVAL_SECONDS)


async def run_workers() -> None:
    """Every job, against the job queue this process was given (`server.jobs.use_job_queue`)."""
    async with anyio.create_task_group() as jobs:
        jobs.start_soon(housekeeping_forever)
        jobs.start_soon(run_triage, current_job_queue())
