"""Runs every background job until cancelled."""

from __future__ import annotations

import logging

import anyio

from server.sessions import purge_expired_sessions

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
    async with anyio.create_task_group() as jobs:
        jobs.start_soon(purge_sessions_forever)
