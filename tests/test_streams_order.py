"""The event log's promise to hubs and reconnecting clients: reading "every event after the last
one seen" never skips an event that commits later, however transactions interleave."""

from __future__ import annotations

import random

import anyio
import pytest
from tortoise.transactions import in_transaction

from server import streams
from server.models import StreamEvent

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("db")]

WRITERS = 30


async def test_a_reader_following_the_log_misses_no_event_of_concurrent_writers() -> None:
    start = await streams.latest_event_id()
    seen: list[int] = []
    done = anyio.Event()
    chance = random.Random(7)

    async def write(delay: float) -> None:
        async with in_transaction() as connection:
            recorded = await streams.record(
                connection, "test.order", streams.Audience(frozenset({1})), data={"d": delay}
            )
            # Still uncommitted: a later writer's event must not become visible before this one.
            await anyio.sleep(delay)
        await anyio.sleep(delay / 2)
        await streams.announce(recorded)

    async def follow() -> None:
        last = start
        while True:
            finished = done.is_set()
            for event, _ in await streams.events_after(last, 500):
                seen.append(event.id)
                last = event.id
            if finished:
                return
            await anyio.sleep(0.002)

    async with anyio.create_task_group() as readers:
        readers.start_soon(follow)
        async with anyio.create_task_group() as writers:
            for _ in range(WRITERS):
                writers.start_soon(write, chance.uniform(0, 0.05))
                await anyio.sleep(chance.uniform(0, 0.01))
        done.set()

    written = list(
        await StreamEvent.filter(id__gt=start, kind="test.order")
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert len(written) == WRITERS
    assert seen == written, "the follower skipped or reordered events"


async def test_an_event_left_pending_by_a_stopped_process_is_numbered_later() -> None:
    """A process that stopped between its change's commit and the announcement leaves the
    event pending (PostgreSQL); the next announcement or hub poll numbers it."""
    start = await streams.latest_event_id()
    async with in_transaction() as connection:
        await streams.record(connection, "test.left", streams.Audience(frozenset({1})))

    await streams.number_pending()

    [(event, recipients)] = await streams.events_after(start, 10)
    assert (event.kind, recipients) == ("test.left", frozenset({1}))
    await streams.number_pending()
    assert len(await streams.events_after(start, 10)) == 1, "numbered twice"
