"""The triage worker: assesses every patient message and stores the result.

Jobs arrive through the job queue as soon as a message is committed. The sweep is the safety
net that makes "never miss one" hold whatever happens to a job: a patient message still
unassessed a few seconds after it was written (Redis restarted, no worker was running, a
worker died holding it) is assessed by whichever worker sweeps first.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import anyio

from server.actions.triage import record_assessment, unassessed_messages
from server.jobs import JobQueue
from server.models import Message, MessageKind
from workers.triage.detector import assess

log = logging.getLogger("colloque.triage")

# A job normally completes in milliseconds; past this age its message is presumed orphaned.
ORPHAN_AGE = timedelta(seconds=5)
SWEEP_EVERY_SECONDS = 2.0
_SWEEP_BATCH = 200


async def assess_message(message_id: int) -> None:
    """Assess one patient message unless that is already done."""
    body = (
        await Message.filter(id=message_id, kind=MessageKind.PATIENT, triaged_at__isnull=True)
        .first()
        .values_list("body", flat=True)
    )
    if body is None:
        return
    assessment = assess(str(body))
    stored = await record_assessment(message_id, assessment.emergency, assessment.categories)
    if stored and assessment.emergency:
        # Not the categories: "suicidal" beside a message id is health data, and logs are not
        # the place for it (the message row and the audit trail hold them).
        log.info("message %d flagged as an emergency", message_id)


async def consume(queue: JobQueue) -> None:
    """Take jobs until cancelled; a job is acknowledged only once its result is stored."""
    async for job in queue.take():
        try:
            await assess_message(job.message_id)
        except Exception:
            # Left unacknowledged: reclaimed by a worker later, or found by the sweep.
            log.exception("triage of message %d failed; it will be retried", job.message_id)
            continue
        try:
            await queue.ack(job)
        except Exception as error:
            # Stored already: a second assessment of it will change nothing.
            log.warning("triage job %s not acknowledged (%s)", job.receipt, error)


async def sweep_forever() -> None:
    """Assess the messages whose job went missing, every few seconds, until cancelled."""
    while True:
        try:
            for message_id in await unassessed_messages(ORPHAN_AGE, _SWEEP_BATCH):
                await assess_message(message_id)
        except Exception:
            # The database may be briefly unreachable: the next sweep tries again.
            log.exception("triage sweep failed; retrying")
        await anyio.sleep(SWEEP_EVERY_SECONDS)


async def run_triage(queue: JobQueue) -> None:
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(consume, queue)
        tasks.start_soon(sweep_forever)
