"""Redis restarted in the middle of a conversation: posting goes on, and every connected client
ends up with every message, once."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from .conftest import Login
from .support import (
    ALICE,
    ALICE_MARTIN_SUBJECT,
    MARTIN,
    SECRETARIAT,
    Cluster,
    the_message,
    token,
    wait_until,
)

pytestmark = pytest.mark.anyio

# A POST must not hang on a dead Redis: the message is stored and the bell is best effort.
POST_SECONDS = 3.0
# After Redis is back (or, while it is down, through the hubs' poll of the log).
CATCH_UP_SECONDS = 10.0
# Through the bell a message arrives in milliseconds; the hubs' poll alone takes up to 2 s.
PROMPT_SECONDS = 0.7
# The subscriber reconnects with a back-off of at most 2 s.
RESUBSCRIBE_SECONDS = 8.0


@pytest.mark.parametrize("name", ["redis", "pair"])
async def test_redis_restart_loses_no_message(
    request: pytest.FixtureRequest, name: str, people: Login
) -> None:
    cluster: Cluster = request.getfixturevalue(f"{name}_cluster")
    assert cluster.redis is not None
    near, far = cluster.servers[0], cluster.servers[-1]
    alice = await people(near.base_url, ALICE)
    martin = await people(far.base_url, MARTIN)
    secretary = await people(near.base_url, SECRETARIAT)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    alice_sse = await alice.sse()
    martin_ws = await martin.ws()
    secretary_ws = await secretary.ws()
    readers = {
        "alice": lambda: alice_sse.updates,
        "martin": lambda: martin_ws.frames,
        "secretary": lambda: secretary_ws.frames,
    }
    words = [token() for _ in range(4)]

    def everyone_has(*wanted: str) -> bool:
        return all(
            any(word in update for update in updates())
            for updates in readers.values()
            for word in wanted
        )

    await alice.say(thread, f"{words[0]} avant")
    await wait_until(lambda: everyone_has(words[0]), what="the first message")

    cluster.redis.kill()
    try:
        for person, word in ((alice, words[1]), (martin, words[2])):
            started = time.monotonic()
            answer = await person.post(thread, f"{word} pendant")
            assert answer.status_code == 303, f"posting while Redis is down: {answer.status_code}"
            assert time.monotonic() - started < POST_SECONDS
        async with httpx.AsyncClient(base_url=near.base_url, timeout=5) as probe:
            assert (await probe.get("/healthz")).status_code == 503, "healthz reports Redis down"
        page = await martin.http.get(f"/threads/{thread}")
        assert words[1] in page.text and words[2] in page.text, "both messages are stored"
    finally:
        cluster.redis.start()

    # Nothing new is posted: what was committed while Redis was down arrives by itself.
    await wait_until(
        lambda: everyone_has(*words[:3]),
        within=CATCH_UP_SECONDS,
        what="every client to have the messages posted while Redis was down",
    )
    await martin.say(thread, f"{words[3]} après")
    await wait_until(lambda: everyone_has(*words), what="a message posted after the restart")
    await asyncio.sleep(0.5)
    for who, updates in readers.items():
        for word in words:
            ident = the_message(updates(), word)
            assert "".join(updates()).count(f'data-message-id="{ident}"') == 1, f"{who}: once"
    assert not (alice_sse.ended or martin_ws.ended or secretary_ws.ended), "streams stay open"
    alice_ids = [int(event.id) for event in alice_sse.events if event.id is not None]
    assert alice_ids == sorted(set(alice_ids))

    # Once Redis is back the bell rings again: updates are prompt, not left to the poll.
    async def crossing() -> float:
        word = token()
        started = time.monotonic()
        await martin.say(thread, word)
        await wait_until(lambda: bool(alice_sse.having(word)), what="a message after the restart")
        return time.monotonic() - started

    deadline = time.monotonic() + RESUBSCRIBE_SECONDS
    while await crossing() >= PROMPT_SECONDS:
        assert time.monotonic() < deadline, "live updates stayed slow after Redis came back"
    samples = [await crossing() for _ in range(3)]
    assert max(samples) < PROMPT_SECONDS, f"updates after the restart took {samples} s"


@pytest.mark.parametrize("name", ["redis", "pair"])
async def test_logout_during_a_redis_outage_still_closes_the_sessions_streams(
    request: pytest.FixtureRequest, name: str, people: Login
) -> None:
    """A second tab of a session that logs out must not keep receiving messages because Redis
    happened to be down when the logout's bell was rung."""
    cluster: Cluster = request.getfixturevalue(f"{name}_cluster")
    assert cluster.redis is not None
    near, far = cluster.servers[0], cluster.servers[-1]
    alice = await people(near.base_url, ALICE)
    other_tab = await people(far.base_url, ALICE, same_session_as=alice)
    martin = await people(far.base_url, MARTIN)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    stream = await other_tab.sse()

    cluster.redis.kill()
    try:
        assert (await alice.logout()).status_code == 303
    finally:
        cluster.redis.start()
    secret = token()
    await martin.say(thread, f"{secret} résultats")
    await wait_until(
        lambda: stream.ended or bool(stream.having(secret)), what="the stream to close"
    )
    assert not stream.having(secret), "a logged-out session's tab received a new message"
    assert stream.ended
