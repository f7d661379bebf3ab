"""Two server processes sharing PostgreSQL and Redis: sessions and live updates cross over."""

from __future__ import annotations

import json
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
    message_elements,
    token,
    wait_until,
)

pytestmark = pytest.mark.anyio

# Through Redis a message crosses processes at once; the hubs' 2-second poll is only the
# safety net, so crossing within this bound shows the bell works.
CROSSING_SECONDS = 1.5


async def test_a_session_created_on_one_process_is_valid_on_the_other(
    pair_cluster: Cluster, people: Login
) -> None:
    a, b = pair_cluster.servers
    martin_on_a = await people(a.base_url, MARTIN)
    martin_on_b = await people(b.base_url, MARTIN, same_session_as=martin_on_a)
    inbox = await martin_on_b.http.get("/inbox")
    assert inbox.status_code == 200 and ALICE_MARTIN_SUBJECT in inbox.text
    thread = await martin_on_b.thread_id(ALICE_MARTIN_SUBJECT)
    word = token()
    await martin_on_b.say(thread, word)  # with the CSRF token of A's page
    socket_on_b = await martin_on_b.ws()
    echo = token()
    await martin_on_a.say(thread, echo)
    await wait_until(lambda: bool(socket_on_b.having(echo)), what="B's WebSocket to stream")
    assert not socket_on_b.ended
    async with httpx.AsyncClient(base_url=b.base_url, timeout=5) as stranger:
        assert (await stranger.get("/inbox")).status_code in (303, 401)


async def test_live_updates_cross_processes_both_ways(pair_cluster: Cluster, people: Login) -> None:
    a, b = pair_cluster.servers
    alice = await people(a.base_url, ALICE)
    martin = await people(b.base_url, MARTIN)
    secretary = await people(a.base_url, SECRETARIAT)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    alice_on_a = await alice.sse()
    martin_on_b = await martin.ws()
    secretary_on_a = await secretary.ws()

    question = token()
    started = time.monotonic()
    await alice.say(thread, f"{question} question")
    took = await wait_until(lambda: bool(martin_on_b.having(question)), what="A to B")
    assert time.monotonic() - started < CROSSING_SECONDS, f"A to B took {took:.2f} s"
    assert any(message_elements(frame, question) for frame in martin_on_b.frames)

    for via in ("http", "ws"):
        answer = token()
        started = time.monotonic()
        if via == "http":
            await martin.say(thread, f"{answer} réponse")
        else:
            await martin_on_b.send_json(
                json.dumps({"type": "message", "thread_id": thread, "body": f"{answer} réponse"})
            )
        await wait_until(
            lambda word=answer: bool(alice_on_a.having(word) and secretary_on_a.having(word)),
            what=f"B to A ({via})",
        )
        assert time.monotonic() - started < CROSSING_SECONDS, f"B to A ({via}) was slow"
        [event] = alice_on_a.having(answer)
        assert event.id is not None and event.id.isdigit()


async def test_logout_on_one_process_closes_streams_on_the_other(
    pair_cluster: Cluster, people: Login
) -> None:
    a, b = pair_cluster.servers
    alice_on_a = await people(a.base_url, ALICE)
    alice_on_b = await people(b.base_url, ALICE, same_session_as=alice_on_a)
    stream_on_b = await alice_on_b.sse()
    other_session = await (await people(b.base_url, ALICE)).sse()
    assert (await alice_on_a.logout()).status_code == 303
    await wait_until(lambda: stream_on_b.ended, within=2.0, what="the stream on B to close")
    assert not other_session.ended
