"""Clients that do not keep up, or send too much, lose their own connection and nothing else."""

from __future__ import annotations

import time

import pytest
import websockets

from server.live.sse import PING_SECONDS

from .conftest import FLOOD_COUNT, Flood, Login
from .support import (
    ALICE_MARTIN_SUBJECT,
    MARTIN,
    SECRETARIAT,
    Cluster,
    token,
    wait_until,
)

# Seconds within which a reading client must have the whole flood once the last post answered:
# a stalled neighbour must not hold it back.
PROMPT_SECONDS = 3.0


@pytest.mark.anyio
async def test_a_client_that_never_reads_is_dropped_without_slowing_others(
    flood: Flood,
) -> None:
    # The reading tab got every message once, promptly.
    assert sorted(flood.received) == list(range(FLOOD_COUNT))
    assert set(flood.received.values()) == {1}, "each message once"
    assert flood.lag < PROMPT_SECONDS, f"the reading client lagged {flood.lag:.1f} s behind"
    # The stalled one was cut off (close 1013 "try again later", or the connection closed)
    # instead of having the whole flood buffered for it.
    assert flood.stalled_ended, "the server kept a client that never reads connected"
    assert flood.stalled_close_code in (None, 1013)
    assert flood.stalled_received < FLOOD_COUNT


@pytest.mark.anyio
async def test_a_flood_of_inbound_frames_closes_only_that_connection(
    cluster: Cluster, people: Login
) -> None:
    martin = await people(cluster.base_url, MARTIN)
    secretary = await people(cluster.base_url, SECRETARIAT)
    thread = await martin.thread_id(ALICE_MARTIN_SUBJECT)
    flooder = await martin.ws()
    calm = await martin.ws()
    colleague = await secretary.ws()

    started = time.monotonic()
    sent = 0
    try:
        for _ in range(500):
            await flooder.send_json(f'{{"type": "typing", "thread_id": {thread}}}')
            sent += 1
    except websockets.ConnectionClosed:
        pass
    await wait_until(lambda: flooder.ended, within=3, what="the flooding connection to close")
    assert flooder.close_code in (None, 1006, 1008, 1011, 1013)
    assert time.monotonic() - started < 3

    # Everyone else, the same user's other connection included, carries on.
    word = token()
    await martin.say(thread, word)
    await wait_until(
        lambda: bool(calm.having(word) and colleague.having(word)), what="the others' updates"
    )
    assert not calm.ended and not colleague.ended
    # The flood was not relayed as hundreds of typing notices either.
    notices = [frame for frame in colleague.frames if f'id="typing-{thread}"' in frame]
    assert len(notices) <= 25, f"{len(notices)} typing notices relayed from {sent} frames"


def test_sse_sends_heartbeat_comments(inprocess_cluster: Cluster) -> None:
    """A comment at least every PING_SECONDS keeps proxies from cutting an idle stream."""
    watcher = inprocess_cluster.facts["ping_watcher"]
    remaining = PING_SECONDS + 2 - (time.monotonic() - watcher.started)
    if remaining > 0:
        time.sleep(remaining)
    assert watcher.status_line.startswith("HTTP/1.1 200")
    pings = [at for at, comment in watcher.comments if comment.startswith("ping")]
    assert pings, f"no ping comment in {PING_SECONDS + 2} s: {watcher.comments}"
    assert pings[0] <= PING_SECONDS + 2
