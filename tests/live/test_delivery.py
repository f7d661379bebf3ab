"""A new message reaches, once, every open stream of everyone who may read it, on both broker
backends (in-process and Redis) with the same test body."""

from __future__ import annotations

import asyncio
import json

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

RAW_MARKUP = "<b>bold</b>"
ESCAPED_MARKUP = "&lt;b&gt;bold&lt;/b&gt;"


async def test_a_message_reaches_every_stream_of_its_readers_once(
    cluster: Cluster, people: Login
) -> None:
    alice = await people(cluster.base_url, ALICE)
    martin = await people(cluster.base_url, MARTIN)
    secretary = await people(cluster.base_url, SECRETARIAT)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)

    alice_tab = await alice.sse()
    alice_other_tab = await alice.sse()
    assert alice_tab.status == 200
    assert alice_tab.content_type.startswith("text/event-stream")
    martin_ws = await martin.ws()
    secretary_ws = await secretary.ws()

    # Alice writes (with markup that must arrive as text): Dr Martin and the secretary see it
    # live, and so do both of Alice's own tabs.
    first = token()
    await alice.say(thread, f"{first} {RAW_MARKUP} & co")
    await wait_until(
        lambda: all(
            stream.having(first) for stream in (martin_ws, secretary_ws, alice_tab, alice_other_tab)
        ),
        what="Alice's message on every stream",
    )
    for updates in (
        martin_ws.frames,
        secretary_ws.frames,
        alice_tab.updates,
        alice_other_tab.updates,
    ):
        element = the_message(updates, first)
        assert any(
            ESCAPED_MARKUP in update and f'data-message-id="{element}"' in update
            for update in updates
        ), "the body's markup arrives HTML-escaped"
        assert not any(RAW_MARKUP in update for update in updates), "markup is never live HTML"

    # Dr Martin answers over his WebSocket: Alice's tabs receive it as an event with an id.
    reply = token()
    await martin_ws.send_json(
        json.dumps({"type": "message", "thread_id": thread, "body": f"{reply} Bien reçu"})
    )
    await wait_until(
        lambda: all(
            stream.having(reply) for stream in (martin_ws, secretary_ws, alice_tab, alice_other_tab)
        ),
        what="Dr Martin's reply on every stream",
    )
    for tab in (alice_tab, alice_other_tab):
        [event] = tab.having(reply)
        assert event.id is not None and event.id.isdigit()
        ids = [int(e.id) for e in tab.events if e.id is not None]
        assert ids == sorted(set(ids)), "event ids only go up"
        assert all(e.id is not None for e in tab.events), "every event carries an id"

    # Once: nothing arrives a second time, whether by the bell, the poll or a resync.
    await asyncio.sleep(0.5)
    for updates in (
        martin_ws.frames,
        secretary_ws.frames,
        alice_tab.updates,
        alice_other_tab.updates,
    ):
        first_id, reply_id = the_message(updates, first), the_message(updates, reply)
        text = "".join(updates)
        assert text.count(f'data-message-id="{first_id}"') == 1
        assert text.count(f'data-message-id="{reply_id}"') == 1
    assert not martin_ws.ended and not secretary_ws.ended
    assert not alice_tab.ended and not alice_other_tab.ended
