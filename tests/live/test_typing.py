"""Typing notices ("Alice is typing…"): live to the staff who see the thread, not patients."""

from __future__ import annotations

import asyncio
import json

import pytest

from .conftest import Login
from .support import (
    ALICE,
    ALICE_MARTIN_SUBJECT,
    BERNARD,
    BOB,
    MARTIN,
    PETIT,
    SECRETARIAT,
    Cluster,
    wait_until,
)

pytestmark = pytest.mark.anyio


async def test_typing_reaches_the_practitioner_not_the_patient(
    cluster: Cluster, people: Login
) -> None:
    base = cluster.base_url
    alice = await people(base, ALICE)
    martin = await people(base, MARTIN)
    thread = await alice.thread_id(ALICE_MARTIN_SUBJECT)
    alice_tabs = [await alice.sse(), await alice.sse()]
    martin_ws = await martin.ws()
    outsiders = [await (await people(base, who)).ws() for who in (BERNARD, PETIT)]
    bob_sse = await (await people(base, BOB)).sse()
    marker = f'id="typing-{thread}"'

    # Without the CSRF token the request is refused and nobody is told anything.
    forged = await alice.http.post(f"/threads/{thread}/typing")
    assert forged.status_code == 403
    # Bob may not see the thread: 404, and again nobody is told.
    bob = await people(base, BOB)
    assert (await bob.typing(thread)).status_code == 404
    await asyncio.sleep(0.5)
    assert not martin_ws.having(marker)

    answer = await alice.typing(thread)
    assert answer.status_code in (200, 202, 204)
    await wait_until(lambda: bool(martin_ws.having(marker)), what="the typing notice")
    [notice] = martin_ws.having(marker)
    assert "Alice Durand" in notice

    # Dr Martin typing (a WebSocket frame) is for the practice's staff, not for the patient.
    secretary_ws = await (await people(base, SECRETARIAT)).ws()
    await martin_ws.send_json(json.dumps({"type": "typing", "thread_id": thread}))
    await wait_until(lambda: bool(secretary_ws.having(marker)), what="the staff's notice")
    assert "Claire Martin" in secretary_ws.having(marker)[0]

    await asyncio.sleep(0.5)
    for tab in alice_tabs:
        assert not any("typing-" in update for update in tab.updates), "not to the patient"
        assert not tab.ended
    assert not any("typing-" in update for update in bob_sse.updates)
    for ws in outsiders:
        assert not ws.having("typing-"), "not to doctors outside the thread"
